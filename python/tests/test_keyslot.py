"""redipc.keyslot and redipc.hash_tag_for_slot (Redis Cluster helpers, computed locally)."""

import pytest

import redipc


def test_keyslot_matches_the_servers_values() -> None:
    # Values of CLUSTER KEYSLOT (Redis 7); str and bytes alike.
    assert redipc.keyslot("foo") == redipc.keyslot(b"foo") == 12182
    assert redipc.keyslot("bar") == 5061
    assert redipc.keyslot("") == 0
    # Only the first non-empty {hash tag} is hashed.
    assert redipc.keyslot("{user1000}.following") == redipc.keyslot("user1000")
    assert redipc.keyslot("foo{bar}{zap}") == redipc.keyslot("bar")
    assert redipc.keyslot("foo{}{bar}") != redipc.keyslot("bar")
    with pytest.raises(TypeError):
        redipc.keyslot(None)  # type: ignore[arg-type]


def test_a_tag_puts_keys_on_a_chosen_slot() -> None:
    for slot in (0, 1, 777, 8191, 16383):
        tag = redipc.hash_tag_for_slot(slot)
        assert tag and redipc.keyslot("{%s}:jobs" % tag) == slot
        assert redipc.hash_tag_for_slot(slot) == tag
    for bad in (-1, 16384, 2**40):
        with pytest.raises(redipc.InvalidArgument, match="out of range"):
            redipc.hash_tag_for_slot(bad)
