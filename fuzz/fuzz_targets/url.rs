//! Connection URL and option parsing (`parse_url`, with the options it merges and checks):
//! no panic on any text, and no password ever shown in an error or in what messages show
//! of the address.
//!
//! The input builds `scheme://[user:password@]host[:port][/path][?query]` from fuzzed parts,
//! and options. Every password (in the URL's user info, in a `pass=`/`password=` query
//! parameter, or in the options) starts and ends with `Q`, and `Q` appears nowhere else
//! (and `%`, which could spell it, neither), so a `Q` in an error means a password, or a
//! piece of one, leaked. Then the input itself is parsed as a URL: no panic.
#![no_main]

use std::time::Duration;

use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use redipc::Options;
use redipc::fuzzing::parse_url;

/// Fuzzed text that cannot show a password: no `Q`, no `%`.
fn plain(u: &mut Unstructured) -> Result<String> {
    let s: String = u.arbitrary()?;
    Ok(s.chars()
        .take(32)
        .map(|c| match c {
            'Q' => 'q',
            '%' => '_',
            c => c,
        })
        .collect())
}

/// A password: `Q...Q`, anything in between (`@`, `:`, `/`, `%41`, `Q`, ...).
fn password(u: &mut Unstructured) -> Result<String> {
    let inner: String = u.arbitrary()?;
    let inner: String = inner.chars().take(32).collect();
    Ok(format!("Q{inner}Q"))
}

fn pick<'a>(u: &mut Unstructured, choices: &[&'a str]) -> Result<&'a str> {
    Ok(choices[u.choose_index(choices.len())?])
}

fn case(u: &mut Unstructured) -> Result<(String, Options)> {
    let scheme = match u.choose_index(9)? {
        0 => plain(u)?,
        i => [
            "redis",
            "unix",
            "redis+unix",
            "rediss",
            "REDIS",
            "http",
            "",
            "redis:",
        ][i - 1]
            .to_owned(),
    };
    let mut url = format!("{scheme}{}", pick(u, &["://", ":/", ":", "", "://"])?);
    if u.arbitrary()? {
        url.push_str(&plain(u)?);
        if u.arbitrary()? {
            url.push(':');
            url.push_str(&password(u)?);
        }
        url.push('@');
    }
    url.push_str(&match u.choose_index(5)? {
        0 => plain(u)?,
        1 => "127.0.0.1".into(),
        2 => "[::1]".into(),
        3 => "/tmp/redis.sock".into(),
        _ => String::new(),
    });
    if u.arbitrary()? {
        url.push(':');
        url.push_str(&match u.choose_index(3)? {
            0 => plain(u)?,
            1 => u.arbitrary::<u16>()?.to_string(),
            _ => u.arbitrary::<u64>()?.to_string(),
        });
    }
    if u.arbitrary()? {
        url.push('/');
        url.push_str(&plain(u)?);
    }
    if u.arbitrary()? {
        url.push('?');
        for i in 0..u.int_in_range(1..=3)? {
            if i > 0 {
                url.push('&');
            }
            let key = pick(u, &["db", "pass", "password", "user", "protocol", "x"])?;
            url.push_str(key);
            url.push('=');
            if key.starts_with("pass") {
                url.push_str(&password(u)?);
            } else {
                url.push_str(&plain(u)?);
            }
        }
    }
    let mut o = Options::default();
    if u.arbitrary()? {
        o = o.password(password(u)?);
    }
    if u.arbitrary()? {
        o = o.username(plain(u)?);
    }
    if u.arbitrary()? {
        o = o.database(u.arbitrary()?);
    }
    if u.arbitrary()? {
        o = o.client_name(plain(u)?);
    }
    if u.arbitrary()? {
        o = o
            .connect_timeout(Duration::from_millis(u.int_in_range(0..=2)?))
            .response_timeout(Duration::from_millis(u.int_in_range(0..=2)?))
            .health_check_interval(Duration::from_millis(u.int_in_range(0..=20)?))
            .max_value_size(u.int_in_range(0..=2)?)
            .max_reply_size(u.int_in_range(0..=100)?)
            .resp3(u.arbitrary()?);
    }
    Ok((url, o))
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    if let Ok((url, opts)) = case(&mut u) {
        let debug = format!("{opts:?}");
        assert!(
            !debug.contains('Q'),
            "Options' Debug shows the password: {debug}"
        );
        match parse_url(&url, &opts) {
            Ok(shown) => assert!(!shown.contains('Q'), "{url:?} is shown as {shown:?}"),
            Err(e) => {
                let text = format!("{e} | {e:?}");
                assert!(
                    !text.contains('Q'),
                    "{url:?}: the error shows a password: {text}"
                );
            }
        }
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = parse_url(text, &Options::default());
    }
});
