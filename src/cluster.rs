//! Redis Cluster's key → slot mapping, and hash tags chosen by slot (issue 12, its first
//! slice: the helpers; the cluster client comes next).
//!
//! A cluster spreads keys over 16384 slots by CRC16 (XMODEM) of the key modulo 16384;
//! when the key holds a hash tag — the text between the first `{` and the next `}`, if not
//! empty — only the tag is hashed, so keys sharing a tag share a slot (what multi-key
//! commands, transactions and Lua scripts on a cluster need). [`keyslot`] computes it like
//! the server's `CLUSTER KEYSLOT`; [`hash_tag_for_slot`] gives a short tag for a chosen
//! slot, to put queues, streams or shard channels on purpose on different slots (and so,
//! spread over the nodes).

use std::sync::OnceLock;

/// How many slots a Redis Cluster has.
pub const SLOTS: u16 = 16384;

const CRC16: crc::Crc<u16> = crc::Crc::<u16>::new(&crc::CRC_16_XMODEM);

/// The part of `key` that is hashed: its hash tag when it has a non-empty one, else all.
fn hashed(key: &[u8]) -> &[u8] {
    if let Some(open) = key.iter().position(|&b| b == b'{')
        && let Some(len) = key[open + 1..].iter().position(|&b| b == b'}')
        && len > 0
    {
        return &key[open + 1..open + 1 + len];
    }
    key
}

/// The cluster slot of `key` (0..16384), as the server's `CLUSTER KEYSLOT` says: CRC16 of
/// the key, or of its hash tag (`{user:42}:cart` and `{user:42}:orders` share a slot).
pub fn keyslot(key: impl AsRef<[u8]>) -> u16 {
    CRC16.checksum(hashed(key.as_ref())) % SLOTS
}

/// A short hash tag (without braces) whose keys land in `slot`: the key
/// `format!("{{{tag}}}:jobs")` is in that slot. The shortest such tag made of digits and
/// lowercase letters, the same for every call and every process. `None` when `slot` is
/// 16384 or more.
pub fn hash_tag_for_slot(slot: u16) -> Option<&'static str> {
    static TAGS: OnceLock<Vec<String>> = OnceLock::new();
    let tags = TAGS.get_or_init(|| {
        // Every slot gets the first tag found for it, counting in base 36 (about 50,000
        // candidates cover every slot; a few milliseconds, once).
        let mut tags: Vec<Option<String>> = vec![None; SLOTS as usize];
        let mut left = SLOTS as usize;
        let mut n: u64 = 0;
        while left > 0 {
            let tag = base36(n);
            let slot = keyslot(&tag) as usize;
            if tags[slot].is_none() {
                tags[slot] = Some(tag);
                left -= 1;
            }
            n += 1;
        }
        tags.into_iter().map(Option::unwrap_or_default).collect()
    });
    tags.get(slot as usize).map(String::as_str)
}

fn base36(mut n: u64) -> String {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::new();
    loop {
        out.push(DIGITS[(n % 36) as usize]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_slots() {
        // Values of `CLUSTER KEYSLOT` (Redis 7).
        assert_eq!(keyslot("foo"), 12182);
        assert_eq!(keyslot("bar"), 5061);
        assert_eq!(keyslot("hello"), 866);
        assert_eq!(keyslot(""), 0);
        // Hash tags: only the first non-empty {...} is hashed.
        assert_eq!(keyslot("{user1000}.following"), keyslot("user1000"));
        assert_eq!(keyslot("{user1000}.followers"), keyslot("user1000"));
        assert_eq!(keyslot("foo{}{bar}"), keyslot("foo{}{bar}".as_bytes()));
        assert_ne!(keyslot("foo{}{bar}"), keyslot("bar"));
        assert_eq!(keyslot("foo{{bar}}zap"), keyslot("{bar"));
        assert_eq!(keyslot("foo{bar}{zap}"), keyslot("bar"));
        assert_eq!(keyslot("{"), keyslot("{".as_bytes()));
        assert_eq!(keyslot("}{"), keyslot("}{".as_bytes()));
    }

    #[test]
    fn a_tag_for_every_slot() {
        for slot in 0..SLOTS {
            let tag = hash_tag_for_slot(slot).unwrap();
            assert!(!tag.is_empty() && tag.len() <= 4, "{tag}");
            assert_eq!(keyslot(format!("{{{tag}}}:jobs")), slot);
        }
        assert_eq!(hash_tag_for_slot(SLOTS), None);
        assert_eq!(hash_tag_for_slot(0), hash_tag_for_slot(0));
    }
}
