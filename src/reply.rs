//! [`Reply`]: one server reply, covering every RESP2 and RESP3 type.

use crate::error::{Error, ErrorKind, Result};

/// The server's error reply as a value (inside an array, e.g. one slot of an `EXEC` result).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerError {
    /// The first word of the error, such as `WRONGTYPE` or `ERR`.
    pub code: String,
    /// The rest of the text.
    pub message: String,
}

impl From<ServerError> for Error {
    fn from(e: ServerError) -> Error {
        Error::server(e.code, e.message)
    }
}

/// One reply of the server. RESP2 replies use a subset of the variants; RESP3 adds maps,
/// sets, doubles, booleans, big numbers, verbatim strings and pushes.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Reply {
    /// The null reply (a missing key, a timed-out blocking pop).
    Nil,
    /// An integer.
    Int(i64),
    /// A bulk string: binary-safe bytes.
    Bulk(Vec<u8>),
    /// A simple status string such as `OK` or `PONG`.
    Status(String),
    /// An error reply inside an aggregate (top-level errors are returned as [`Error`]).
    Error(ServerError),
    /// An array.
    Array(Vec<Reply>),
    /// A RESP3 map, in the server's order.
    Map(Vec<(Reply, Reply)>),
    /// A RESP3 set.
    Set(Vec<Reply>),
    /// A RESP3 double.
    Double(f64),
    /// A RESP3 boolean.
    Bool(bool),
    /// A RESP3 big number, as its decimal text.
    BigNumber(String),
    /// A RESP3 verbatim string: its format (`txt`, `mkd`) and text.
    Verbatim {
        /// Three-letter format.
        format: String,
        /// The text.
        text: String,
    },
    /// A RESP3 push (pub/sub messages, invalidations): its kind and data.
    Push {
        /// `message`, `subscribe`, `invalidate`, ...
        kind: String,
        /// The rest of the push.
        data: Vec<Reply>,
    },
}

/// The type of a [`Reply`], as a plain C-like enum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ReplyType {
    /// [`Reply::Nil`]
    Nil,
    /// [`Reply::Int`]
    Int,
    /// [`Reply::Bulk`]
    Bulk,
    /// [`Reply::Status`]
    Status,
    /// [`Reply::Error`]
    Error,
    /// [`Reply::Array`]
    Array,
    /// [`Reply::Map`]
    Map,
    /// [`Reply::Set`]
    Set,
    /// [`Reply::Double`]
    Double,
    /// [`Reply::Bool`]
    Bool,
    /// [`Reply::BigNumber`]
    BigNumber,
    /// [`Reply::Verbatim`]
    Verbatim,
    /// [`Reply::Push`]
    Push,
}

impl Reply {
    /// The type of this reply.
    pub fn kind(&self) -> ReplyType {
        match self {
            Reply::Nil => ReplyType::Nil,
            Reply::Int(_) => ReplyType::Int,
            Reply::Bulk(_) => ReplyType::Bulk,
            Reply::Status(_) => ReplyType::Status,
            Reply::Error(_) => ReplyType::Error,
            Reply::Array(_) => ReplyType::Array,
            Reply::Map(_) => ReplyType::Map,
            Reply::Set(_) => ReplyType::Set,
            Reply::Double(_) => ReplyType::Double,
            Reply::Bool(_) => ReplyType::Bool,
            Reply::BigNumber(_) => ReplyType::BigNumber,
            Reply::Verbatim { .. } => ReplyType::Verbatim,
            Reply::Push { .. } => ReplyType::Push,
        }
    }

    /// Whether this is [`Reply::Nil`].
    pub fn is_nil(&self) -> bool {
        matches!(self, Reply::Nil)
    }

    /// The bytes of a string-like reply (bulk, status, verbatim text, big number, error
    /// message), or `None` for other types.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Reply::Bulk(b) => Some(b),
            Reply::Status(s) | Reply::BigNumber(s) => Some(s.as_bytes()),
            Reply::Verbatim { text, .. } => Some(text.as_bytes()),
            Reply::Error(e) => Some(e.message.as_bytes()),
            _ => None,
        }
    }

    /// The reply as an integer: an integer, or a string holding one (Redis sends numbers as
    /// strings in several places), or a boolean as 0/1.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Reply::Int(i) => Some(*i),
            Reply::Bool(b) => Some(i64::from(*b)),
            Reply::Bulk(_) | Reply::Status(_) | Reply::BigNumber(_) => {
                std::str::from_utf8(self.as_bytes()?).ok()?.parse().ok()
            }
            _ => None,
        }
    }

    /// The reply as a float: a double, an integer, or a string holding a number.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Reply::Double(d) => Some(*d),
            Reply::Int(i) => Some(*i as f64),
            Reply::Bulk(_) | Reply::Status(_) | Reply::BigNumber(_) => {
                std::str::from_utf8(self.as_bytes()?).ok()?.parse().ok()
            }
            _ => None,
        }
    }

    /// The elements of an array, set or push (for a map: none; use [`Reply::as_map`]).
    pub fn as_slice(&self) -> Option<&[Reply]> {
        match self {
            Reply::Array(v) | Reply::Set(v) => Some(v),
            Reply::Push { data, .. } => Some(data),
            _ => None,
        }
    }

    /// The pairs of a map, or of an array of even length read as `k1 v1 k2 v2 ...` (how RESP2
    /// sends `HGETALL`).
    pub fn as_map(&self) -> Option<Vec<(&Reply, &Reply)>> {
        match self {
            Reply::Map(pairs) => Some(pairs.iter().map(|(k, v)| (k, v)).collect()),
            Reply::Array(v) if v.len() % 2 == 0 => {
                Some(v.chunks_exact(2).map(|c| (&c[0], &c[1])).collect())
            }
            _ => None,
        }
    }

    /// The number of elements of an aggregate (array, set, push: elements; map: pairs);
    /// 0 for scalars.
    pub fn len(&self) -> usize {
        match self {
            Reply::Array(v) | Reply::Set(v) => v.len(),
            Reply::Push { data, .. } => data.len(),
            Reply::Map(m) => m.len(),
            _ => 0,
        }
    }

    /// Whether [`len`](Reply::len) is 0.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Turn a reply into bytes (`None` for nil); an error if it is of another type.
    pub fn into_opt_bytes(self) -> Result<Option<Vec<u8>>> {
        match self {
            Reply::Nil => Ok(None),
            Reply::Bulk(b) => Ok(Some(b)),
            Reply::Status(s) | Reply::BigNumber(s) => Ok(Some(s.into_bytes())),
            Reply::Verbatim { text, .. } => Ok(Some(text.into_bytes())),
            Reply::Error(e) => Err(e.into()),
            other => Err(unexpected("a string or nil", &other)),
        }
    }

    /// Turn a reply into an integer; an error if it is not one.
    pub fn into_int(self) -> Result<i64> {
        if let Reply::Error(e) = self {
            return Err(e.into());
        }
        self.as_int().ok_or_else(|| unexpected("an integer", &self))
    }

    /// Turn an integer reply into a flag: `true` for 1 (`PEXPIRE`'s "the timeout was
    /// set"); an error if it is not an integer.
    pub fn into_flag(self) -> Result<bool> {
        Ok(self.into_int()? == 1)
    }

    /// Check `PING`'s answer (a status or a bulk string); an error otherwise.
    pub fn into_pong(self) -> Result<()> {
        match self {
            Reply::Status(_) | Reply::Bulk(_) => Ok(()),
            Reply::Error(e) => Err(e.into()),
            other => Err(unexpected("PONG", &other)),
        }
    }

    /// Turn a reply into a list of (field, value) byte pairs: a map, or a flat array of pairs.
    pub fn into_pairs(self) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let pairs: Vec<(Reply, Reply)> = match self {
            Reply::Map(m) => m,
            Reply::Array(v) if v.len() % 2 == 0 => {
                let mut it = v.into_iter();
                let mut out = Vec::new();
                while let (Some(k), Some(val)) = (it.next(), it.next()) {
                    out.push((k, val));
                }
                out
            }
            other => return Err(unexpected("a map", &other)),
        };
        pairs
            .into_iter()
            .map(|(k, v)| {
                let k = k.into_opt_bytes()?.unwrap_or_default();
                let v = v.into_opt_bytes()?.unwrap_or_default();
                Ok((k, v))
            })
            .collect()
    }

    /// Check a status reply (`OK`); an error otherwise.
    pub fn into_ok(self) -> Result<()> {
        match self {
            Reply::Status(_) => Ok(()),
            Reply::Error(e) => Err(e.into()),
            other => Err(unexpected("OK", &other)),
        }
    }
}

fn unexpected(wanted: &str, got: &Reply) -> Error {
    Error::new(
        ErrorKind::Protocol,
        format!("expected {wanted} from the server, got {:?}", got.kind()),
    )
}
