//! Redis Cluster's key → slot mapping, hash tags chosen by slot, and where a command's
//! keys are (the cluster router's table, `net/cluster.rs`).
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

/// Where the keys of a command are among its arguments (the command name is argument 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg(feature = "cluster")]
pub(crate) enum KeySpec {
    /// No key: any node serves it.
    None,
    /// Arguments `first..=last` (from the end when `last` is negative: -1 the last
    /// argument), every `step`th: the legacy triple of `COMMAND INFO`.
    Range {
        first: usize,
        last: isize,
        step: usize,
    },
    /// A count of keys at `at`, the keys right after it (`EVAL`, `ZUNIONSTORE`, `LMPOP`),
    /// plus `before` keys ahead of the count (`ZUNIONSTORE`'s destination).
    Counted { at: usize, before: usize },
    /// After the `STREAMS` word, the first half (`XREAD`, `XREADGROUP`).
    Streams,
    /// Not known here: ask the server (`COMMAND INFO`, `COMMAND GETKEYS`).
    Unknown,
}

/// A command name in upper case, in `buf` (no allocation on the command path); `None` when
/// it is longer than `buf` (no command we know is).
pub(crate) fn upper_in<'a>(name: &[u8], buf: &'a mut [u8]) -> Option<&'a [u8]> {
    let upper = buf.get_mut(..name.len())?;
    upper.copy_from_slice(name);
    upper.make_ascii_uppercase();
    Some(upper)
}

/// What is known of a command's keys without asking the server.
#[cfg(feature = "cluster")]
pub(crate) fn key_spec(name: &[u8]) -> KeySpec {
    let mut buf = [0u8; 24];
    let Some(upper) = upper_in(name, &mut buf) else {
        return KeySpec::Unknown;
    };
    let one = |first| KeySpec::Range {
        first,
        last: first as isize,
        step: 1,
    };
    let all = KeySpec::Range {
        first: 1,
        last: -1,
        step: 1,
    };
    match upper {
        b"PING" | b"ECHO" | b"INFO" | b"DBSIZE" | b"TIME" | b"FLUSHALL" | b"FLUSHDB"
        | b"SCRIPT" | b"CLUSTER" | b"CLIENT" | b"CONFIG" | b"COMMAND" | b"RANDOMKEY" | b"KEYS"
        | b"SCAN" | b"LASTSAVE" | b"FUNCTION" | b"ROLE" | b"SLOWLOG" | b"LATENCY" | b"ACL"
        | b"PUBSUB" | b"READONLY" | b"READWRITE" | b"WAIT" | b"WAITAOF" | b"DEBUG" | b"MODULE"
        | b"SAVE" | b"BGSAVE" | b"BGREWRITEAOF" | b"LOLWUT" | b"SHUTDOWN" | b"ASKING"
        | b"SWAPDB" | b"MULTI" | b"EXEC" | b"DISCARD" | b"UNWATCH" => KeySpec::None,
        b"GET"
        | b"SET"
        | b"SETNX"
        | b"SETEX"
        | b"PSETEX"
        | b"GETSET"
        | b"GETDEL"
        | b"GETEX"
        | b"APPEND"
        | b"STRLEN"
        | b"INCR"
        | b"DECR"
        | b"INCRBY"
        | b"DECRBY"
        | b"INCRBYFLOAT"
        | b"GETRANGE"
        | b"SETRANGE"
        | b"SUBSTR"
        | b"GETBIT"
        | b"SETBIT"
        | b"BITCOUNT"
        | b"BITPOS"
        | b"BITFIELD"
        | b"BITFIELD_RO"
        | b"EXPIRE"
        | b"PEXPIRE"
        | b"EXPIREAT"
        | b"PEXPIREAT"
        | b"EXPIRETIME"
        | b"PEXPIRETIME"
        | b"TTL"
        | b"PTTL"
        | b"PERSIST"
        | b"TYPE"
        | b"DUMP"
        | b"RESTORE"
        | b"HSET"
        | b"HSETNX"
        | b"HGET"
        | b"HMSET"
        | b"HMGET"
        | b"HDEL"
        | b"HEXISTS"
        | b"HGETALL"
        | b"HKEYS"
        | b"HVALS"
        | b"HLEN"
        | b"HINCRBY"
        | b"HINCRBYFLOAT"
        | b"HSTRLEN"
        | b"HSCAN"
        | b"HRANDFIELD"
        | b"LPUSH"
        | b"RPUSH"
        | b"LPUSHX"
        | b"RPUSHX"
        | b"LPOP"
        | b"RPOP"
        | b"LLEN"
        | b"LRANGE"
        | b"LINDEX"
        | b"LSET"
        | b"LREM"
        | b"LTRIM"
        | b"LINSERT"
        | b"LPOS"
        | b"SADD"
        | b"SREM"
        | b"SMEMBERS"
        | b"SISMEMBER"
        | b"SMISMEMBER"
        | b"SCARD"
        | b"SPOP"
        | b"SRANDMEMBER"
        | b"SSCAN"
        | b"ZADD"
        | b"ZREM"
        | b"ZSCORE"
        | b"ZMSCORE"
        | b"ZINCRBY"
        | b"ZCARD"
        | b"ZCOUNT"
        | b"ZRANGE"
        | b"ZRANGEBYSCORE"
        | b"ZREVRANGEBYSCORE"
        | b"ZRANGEBYLEX"
        | b"ZREVRANGEBYLEX"
        | b"ZREVRANGE"
        | b"ZRANK"
        | b"ZREVRANK"
        | b"ZREMRANGEBYSCORE"
        | b"ZREMRANGEBYRANK"
        | b"ZREMRANGEBYLEX"
        | b"ZLEXCOUNT"
        | b"ZPOPMIN"
        | b"ZPOPMAX"
        | b"ZSCAN"
        | b"ZRANDMEMBER"
        | b"XADD"
        | b"XLEN"
        | b"XRANGE"
        | b"XREVRANGE"
        | b"XDEL"
        | b"XTRIM"
        | b"XACK"
        | b"XCLAIM"
        | b"XAUTOCLAIM"
        | b"XPENDING"
        | b"XSETID"
        | b"PFADD"
        | b"GEOADD"
        | b"GEODIST"
        | b"GEOHASH"
        | b"GEOPOS"
        | b"GEOSEARCH"
        | b"GEORADIUS_RO"
        | b"GEORADIUSBYMEMBER_RO"
        | b"SPUBLISH"
        | b"SORT_RO" => one(1),
        // Not a key, but routed as one: a channel's messages then always enter the cluster
        // through the same node, so they reach subscribers in the order they were sent.
        b"PUBLISH" => one(1),
        b"XGROUP" | b"XINFO" | b"OBJECT" | b"MEMORY" => one(2),
        b"DEL" | b"UNLINK" | b"EXISTS" | b"TOUCH" | b"MGET" | b"WATCH" | b"SINTER" | b"SUNION"
        | b"SDIFF" | b"PFCOUNT" | b"PFMERGE" | b"SINTERSTORE" | b"SUNIONSTORE" | b"SDIFFSTORE" => {
            all
        }
        b"RENAME" | b"RENAMENX" | b"SMOVE" | b"RPOPLPUSH" | b"LMOVE" | b"BLMOVE"
        | b"BRPOPLPUSH" | b"COPY" | b"ZRANGESTORE" | b"GEOSEARCHSTORE" | b"LCS" => KeySpec::Range {
            first: 1,
            last: 2,
            step: 1,
        },
        b"BITOP" => KeySpec::Range {
            first: 2,
            last: -1,
            step: 1,
        },
        b"MSET" | b"MSETNX" => KeySpec::Range {
            first: 1,
            last: -1,
            step: 2,
        },
        b"BLPOP" | b"BRPOP" | b"BZPOPMIN" | b"BZPOPMAX" => KeySpec::Range {
            first: 1,
            last: -2,
            step: 1,
        },
        b"EVAL" | b"EVALSHA" | b"EVAL_RO" | b"EVALSHA_RO" | b"FCALL" | b"FCALL_RO" | b"BLMPOP"
        | b"BZMPOP" => KeySpec::Counted { at: 2, before: 0 },
        b"ZUNIONSTORE" | b"ZINTERSTORE" | b"ZDIFFSTORE" => KeySpec::Counted { at: 2, before: 1 },
        b"ZUNION" | b"ZINTER" | b"ZDIFF" | b"ZINTERCARD" | b"SINTERCARD" | b"LMPOP" | b"ZMPOP" => {
            KeySpec::Counted { at: 1, before: 0 }
        }
        b"XREAD" | b"XREADGROUP" => KeySpec::Streams,
        _ => KeySpec::Unknown,
    }
}

/// The positions of the keys among `args` by `spec` (`None` for [`KeySpec::Unknown`], or
/// when the arguments do not fit the spec: the server will say what is wrong).
#[cfg(feature = "cluster")]
pub(crate) fn key_positions<A: AsRef<[u8]>>(spec: KeySpec, args: &[A]) -> Option<Vec<usize>> {
    let n = args.len();
    match spec {
        KeySpec::None => Some(Vec::new()),
        KeySpec::Range { first, last, step } => {
            let last = if last < 0 {
                n as isize + last
            } else {
                last.min(n as isize - 1)
            };
            if first == 0 || last < first as isize || step == 0 {
                return Some(Vec::new());
            }
            Some((first..=last as usize).step_by(step).collect())
        }
        KeySpec::Counted { at, before } => {
            let count: usize = std::str::from_utf8(args.get(at)?.as_ref())
                .ok()?
                .parse()
                .ok()?;
            if at + 1 + count > n {
                return None;
            }
            let mut keys: Vec<usize> = (at - before..at).collect();
            keys.extend(at + 1..at + 1 + count);
            Some(keys)
        }
        KeySpec::Streams => {
            let at = args
                .iter()
                .position(|a| a.as_ref().eq_ignore_ascii_case(b"STREAMS"))?;
            let rest = n - at - 1;
            if rest == 0 || rest % 2 != 0 {
                return None;
            }
            Some((at + 1..at + 1 + rest / 2).collect())
        }
        KeySpec::Unknown => None,
    }
}

/// Whether a command only reads (may go to a replica when reading from replicas).
#[cfg(feature = "cluster")]
pub(crate) fn is_readonly(name: &[u8]) -> bool {
    let mut buf = [0u8; 24];
    let Some(upper) = upper_in(name, &mut buf) else {
        return false;
    };
    matches!(
        upper,
        b"GET"
            | b"MGET"
            | b"STRLEN"
            | b"GETRANGE"
            | b"SUBSTR"
            | b"EXISTS"
            | b"TTL"
            | b"PTTL"
            | b"EXPIRETIME"
            | b"PEXPIRETIME"
            | b"TYPE"
            | b"GETBIT"
            | b"BITCOUNT"
            | b"BITPOS"
            | b"BITFIELD_RO"
            | b"HGET"
            | b"HMGET"
            | b"HGETALL"
            | b"HKEYS"
            | b"HVALS"
            | b"HLEN"
            | b"HEXISTS"
            | b"HSTRLEN"
            | b"HRANDFIELD"
            | b"HSCAN"
            | b"LRANGE"
            | b"LLEN"
            | b"LINDEX"
            | b"LPOS"
            | b"SMEMBERS"
            | b"SISMEMBER"
            | b"SMISMEMBER"
            | b"SCARD"
            | b"SRANDMEMBER"
            | b"SSCAN"
            | b"SINTER"
            | b"SUNION"
            | b"SDIFF"
            | b"SINTERCARD"
            | b"ZRANGE"
            | b"ZRANGEBYSCORE"
            | b"ZREVRANGEBYSCORE"
            | b"ZRANGEBYLEX"
            | b"ZREVRANGEBYLEX"
            | b"ZREVRANGE"
            | b"ZSCORE"
            | b"ZMSCORE"
            | b"ZCARD"
            | b"ZCOUNT"
            | b"ZLEXCOUNT"
            | b"ZRANK"
            | b"ZREVRANK"
            | b"ZRANDMEMBER"
            | b"ZSCAN"
            | b"XRANGE"
            | b"XREVRANGE"
            | b"XLEN"
            | b"GEOPOS"
            | b"GEODIST"
            | b"GEOHASH"
            | b"GEOSEARCH"
            | b"PFCOUNT"
            | b"DUMP"
            | b"SORT_RO"
            | b"EVAL_RO"
            | b"EVALSHA_RO"
            | b"FCALL_RO"
    )
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
    #[cfg_attr(
        miri,
        ignore = "the table of 16,384 tags takes most of an hour under Miri"
    )]
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
