//! Every exported function is written the one way (see `ffi_boundary!` in src/lib.rs):
//! `#[unsafe(no_mangle)]`, its whole body one `ffi_boundary!` naming the function and all of
//! its parameters in order, `#[must_use]` when it returns `ipc_result`, and a doc comment
//! that states thread safety. The C API's rules are checked too: parameter order, `_stop` and
//! `_free` for every handle that runs callbacks, ownership declared once per handle, and no
//! behaviour (loops, waits, threads, locks) in the bindings. This reads the sources, so a new
//! function cannot skip it.

use std::path::PathBuf;

struct Exported {
    file: String,
    name: String,
    attrs: Vec<String>,
    docs: String,
    params: Vec<(String, String)>,
    ret: String,
    body_start: String,
}

fn sources() -> Vec<(String, String)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("read ffi/src") {
        let path = entry.expect("dir entry").path();
        if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path).expect("read source");
            out.push((
                path.file_name().unwrap().to_string_lossy().into_owned(),
                text,
            ));
        }
    }
    out.sort();
    out
}

fn exported() -> Vec<Exported> {
    let mut found = Vec::new();
    for (file, text) in sources() {
        // The library's own `pow` (an `extern "C" fn` under a hidden name, not exported).
        if file == "nolibm.rs" {
            continue;
        }
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            let Some(pos) = line.find("extern \"C\" fn ") else {
                continue;
            };
            if line.trim_start().starts_with("//") {
                continue;
            }
            // The signature: from this line to the line ending in `{`.
            let mut sig = String::new();
            let mut j = i;
            loop {
                sig.push_str(lines[j].trim());
                sig.push(' ');
                if lines[j].trim_end().ends_with('{') {
                    break;
                }
                j += 1;
            }
            let sig = &sig[sig.find("extern \"C\" fn ").unwrap() + "extern \"C\" fn ".len()..];
            let open = sig.find('(').expect("(");
            let close = sig.rfind(')').expect(")");
            let name = sig[..open].trim().to_string();
            let params = sig[open + 1..close]
                .split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(|p| {
                    let (n, t) = p.split_once(':').expect("name: type");
                    (n.trim().to_string(), t.trim().to_string())
                })
                .collect();
            let ret = sig[close + 1..]
                .trim()
                .trim_end_matches('{')
                .trim()
                .trim_start_matches("->")
                .trim()
                .to_string();
            // Attributes and docs above the function.
            let mut attrs = Vec::new();
            let mut docs = Vec::new();
            let mut k = i;
            while k > 0 {
                k -= 1;
                let l = lines[k].trim();
                if let Some(d) = l.strip_prefix("///") {
                    docs.push(d.trim().to_string());
                } else if l.starts_with("#[") {
                    attrs.push(l.to_string());
                } else {
                    break;
                }
            }
            docs.reverse();
            let body_start = lines[j + 1..]
                .iter()
                .map(|l| l.trim())
                .take(3)
                .collect::<Vec<_>>()
                .join(" ");
            assert!(line[..pos].contains("pub"), "{file}: {name} is not pub");
            found.push(Exported {
                file: file.clone(),
                name,
                attrs,
                docs: docs.join(" "),
                params,
                ret,
                body_start,
            });
        }
    }
    found
}

#[test]
fn every_exported_function_goes_through_the_boundary() {
    let fns = exported();
    assert!(
        fns.len() >= 40,
        "only {} exported functions found",
        fns.len()
    );
    let mut problems = Vec::new();
    for f in &fns {
        let who = format!("{}: {}", f.file, f.name);
        if !f.name.starts_with("ipc_") {
            problems.push(format!("{who}: exported names start with ipc_"));
        }
        if !f.attrs.iter().any(|a| a == "#[unsafe(no_mangle)]") {
            problems.push(format!("{who}: missing #[unsafe(no_mangle)]"));
        }
        if f.ret == "ipc_result" && !f.attrs.iter().any(|a| a == "#[must_use]") {
            problems.push(format!("{who}: returns ipc_result but is not #[must_use]"));
        }
        if !f.docs.contains("Thread safety") {
            problems.push(format!(
                "{who}: the doc comment does not state thread safety"
            ));
        }
        if !(f.docs.contains("Errors")
            || f.docs.contains("no-op")
            || f.docs.to_lowercase().contains("never null"))
        {
            problems.push(format!("{who}: the doc comment does not state its errors"));
        }
        // The whole body is `ffi_boundary!(name(params...) {`.
        let head = f.body_start.replace(' ', "");
        let expected_prefix = format!("ffi_boundary!({}(", f.name);
        if !head.starts_with(&expected_prefix) {
            problems.push(format!(
                "{who}: the body does not start with {expected_prefix}..."
            ));
            continue;
        }
        let rest = &head[expected_prefix.len()..];
        let listed: Vec<String> = rest[..rest.find(')').unwrap_or(0)]
            .split(',')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        let names: Vec<String> = listed
            .iter()
            .map(|s| s.trim_start_matches("#[nullable]").to_string())
            .collect();
        let params: Vec<String> = f.params.iter().map(|(n, _)| n.clone()).collect();
        if names != params {
            problems.push(format!(
                "{who}: ffi_boundary! lists {names:?}, the parameters are {params:?}"
            ));
        }
        for (l, (n, t)) in listed.iter().zip(&f.params) {
            // Raw pointers, and the callback typedefs (`ipc_*_cb`: `Option<extern "C" fn>`,
            // a C function pointer).
            let pointer = t.starts_with('*') || (t.starts_with("ipc_") && t.ends_with("_cb"));
            if l.starts_with("#[nullable]") && !pointer {
                problems.push(format!("{who}: {n} is #[nullable] but not a pointer"));
            }
            if l.starts_with("#[nullable]")
                && !(f.docs.contains("NULL") || f.docs.contains("no-op"))
            {
                problems.push(format!(
                    "{who}: {n} may be NULL but the doc does not say so"
                ));
            }
        }
    }
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
}

#[test]
fn every_exported_function_is_in_the_header() {
    let header = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../include/redipc.h"),
    )
    .expect("read include/redipc.h");
    for f in exported() {
        assert!(
            header.contains(&format!(" {}(", f.name)) || header.contains(&format!("*{}(", f.name)),
            "{} is missing from include/redipc.h",
            f.name
        );
    }
}

/// The parameter order of the header's conventions: the handle and inputs, then options,
/// then callback, userdata, userdata_free, then the out-parameters. An out-parameter is a
/// `*mut *mut`, any `*mut` of a plain type in a function that has one, or a `*mut` of a
/// plain type in the trailing run of `*mut`s (`bool *existed` after the options).
#[test]
fn parameters_come_in_the_one_order() {
    let mut problems = Vec::new();
    for f in exported() {
        let who = format!("{}: {}", f.file, f.name);
        let plain_mut = |t: &str| t.starts_with("*mut") && !t.contains("c_void");
        let kinds: Vec<&str> = f
            .params
            .iter()
            .enumerate()
            .map(|(i, (n, t))| {
                let has_out = f.params.iter().any(|(_, t)| t.starts_with("*mut *mut"))
                    || f.params[i..].iter().all(|(_, t)| plain_mut(t));
                if n == "userdata_free" {
                    "free"
                } else if n == "userdata" {
                    "userdata"
                } else if t.starts_with("ipc_") && t.ends_with("_cb") {
                    "cb"
                } else if t.starts_with("*mut *mut")
                    || (has_out && t.starts_with("*mut") && !t.contains("ipc_"))
                {
                    "out"
                } else if t.contains("_options") && !f.name.contains("_options_") {
                    "opts"
                } else {
                    "in"
                }
            })
            .collect();
        let rank = |k: &str| match k {
            "in" => 0,
            "opts" => 1,
            "cb" => 2,
            "userdata" => 3,
            "free" => 4,
            _ => 5,
        };
        if kinds.windows(2).any(|w| rank(w[0]) > rank(w[1])) {
            problems.push(format!("{who}: parameters {kinds:?} are not in the order in, options, cb, userdata, userdata_free, out"));
        }
        if kinds.contains(&"free") && !kinds.contains(&"userdata") {
            problems.push(format!("{who}: userdata_free without userdata"));
        }
    }
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
}

/// Every handle that runs callbacks (made by a function taking a callback and a
/// `userdata_free`, and the subscription group) has `_stop(handle, timeout_ms)` and `_free`.
#[test]
fn every_handle_that_runs_callbacks_stops_and_frees() {
    let fns = exported();
    let names: Vec<&str> = fns.iter().map(|f| f.name.as_str()).collect();
    let mut handles = vec!["ipc_group".to_string()];
    for f in &fns {
        if f.params.iter().any(|(n, _)| n == "userdata_free")
            && let Some((_, t)) = f
                .params
                .iter()
                .find(|(_, t)| t.starts_with("*mut *mut ipc_"))
        {
            handles.push(t.trim_start_matches("*mut *mut ").to_string());
        }
    }
    assert!(handles.len() >= 7, "{handles:?}");
    let mut problems = Vec::new();
    for h in &handles {
        for suffix in ["_stop", "_free"] {
            let want = format!("{h}{suffix}");
            if !names.contains(&want.as_str()) {
                problems.push(format!("{h} runs callbacks but {want} is missing"));
            }
        }
        if let Some(stop) = fns.iter().find(|f| f.name == format!("{h}_stop"))
            && (stop.params.len() != 2 || stop.params[1] != ("timeout_ms".into(), "u64".into()))
        {
            problems.push(format!("{}: takes (handle, timeout_ms: u64)", stop.name));
        }
    }
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
}

/// Every opaque handle declares what its pointer owns, once, next to its definition.
#[test]
fn every_handle_declares_its_ownership() {
    let mut problems = Vec::new();
    for (file, text) in sources() {
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            let Some(name) = line.strip_prefix("pub struct ipc_") else {
                continue;
            };
            if !lines
                .get(i + 1)
                .is_some_and(|l| l.contains("_private: [u8; 0]"))
            {
                continue; // a #[repr(C)] struct C reads, not a handle
            }
            let name = format!("ipc_{}", name.trim_end_matches(" {"));
            let declared = lines[i..].iter().take(5).any(|l| {
                (l.starts_with("box_castable!(") || l.starts_with("ref_castable!("))
                    && l.contains(&format!("({name} =>"))
            });
            if !declared {
                problems.push(format!(
                    "{file}: {name} has no box_castable!/ref_castable! line"
                ));
            }
        }
    }
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
}

/// The bindings only convert: no loop, wait, thread or lock of their own (those live in the
/// core, once for every surface). Unit tests are exempt.
#[test]
fn the_bindings_have_no_behaviour_of_their_own() {
    let forbidden = [
        "loop {",
        "while ",
        "thread::spawn",
        "std::thread",
        "sleep(",
        "Instant",
        "Mutex",
        "Condvar",
        "Atomic",
        "thread_local!",
    ];
    let mut problems = Vec::new();
    for (file, text) in sources() {
        let code = text.split("#[cfg(test)]").next().unwrap_or("");
        for (i, line) in code.lines().enumerate() {
            let l = line.trim_start();
            if l.starts_with("//") {
                continue;
            }
            // The last error is per thread by definition (error.rs); version.rs parses
            // Cargo's version at compile time.
            if (file == "error.rs" && l.contains("thread_local!"))
                || (file == "version.rs" && l.starts_with("while "))
            {
                continue;
            }
            for f in forbidden {
                if l.contains(f) {
                    problems.push(format!("{file}:{}: `{f}`: {}", i + 1, l));
                }
            }
        }
    }
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
}
