//! `client_methods!`: each method of the client is written once, async, and its blocking
//! twin is derived from it (model: redis-rs `implement_commands!`).

/// Define async methods of [`crate::Client`] and derive the blocking facade's twins.
///
/// Each method is written as `pub async fn name(&self, arg: Type, ...) -> Result<T> { ... }`
/// (generic arguments as `impl Trait`, so that the twin can pass them on). The macro puts
/// the method in `impl crate::Client` and adds `pub fn name(&self, ...) -> Result<T>` to
/// [`crate::blocking::Client`], which waits for the async method on the calling thread.
/// Methods whose blocking form differs (they return a handle with async methods, or take
/// an async closure) are written by hand in `blocking.rs`.
macro_rules! client_methods {
    (@wait $wait:ident; $(
        $(#[$attr:meta])*
        pub async fn $name:ident(&$self:ident $(, $arg:ident : $ty:ty)* $(,)?) -> $ret:ty $body:block
    )*) => {
        impl crate::client::Client {
            $(
                $(#[$attr])*
                pub async fn $name(&$self $(, $arg: $ty)*) -> $ret $body
            )*
        }

        impl crate::blocking::Client {
            $(
                #[doc = concat!(
                    "[`Client::", stringify!($name), "`](crate::Client::", stringify!($name),
                    "), waiting on the calling thread."
                )]
                pub fn $name(&$self $(, $arg: $ty)*) -> $ret {
                    $self.$wait($self.as_async().$name($($arg),*))
                }
            )*
        }
    };
    ($($methods:tt)*) => {
        client_methods! { @wait wait; $($methods)* }
    };
}

/// The lifecycle methods every handle run by a runner offers, with the same rules
/// everywhere (see `delivery/runner.rs`): `stop`, `on_stopped`, `is_stopped`. The path
/// after `self.` to the handle's runner comes first (`runner`, `worker.runner()`), then
/// the handle's name for the docs and what its stop does besides.
macro_rules! runner_methods {
    ([$($runner:tt)+], $what:literal, $stop:literal) => {
        #[doc = concat!(
            "Stop the ", $what, ": ", $stop, " Waits up to `deadline` for running handlers: ",
            "a [`Timeout`](crate::ErrorKind::Timeout) error if one still runs then (the ",
            $what, " stops when it returns). Called from inside one of its own handlers it ",
            "only asks for the stop and returns `Ok` at once: the ", $what,
            " stops when that handler returns."
        )]
        pub fn stop(&self, deadline: std::time::Duration) -> crate::error::Result<()> {
            self.$($runner)+.stop(deadline)
        }

        #[doc = concat!(
            "Run `f` once the ", $what, " has stopped for good, after its last handler ",
            "call returned (on the thread of that last call, or on the one that stopped it; ",
            "at once if it has stopped already). What a binding frees its handler's data in."
        )]
        pub fn on_stopped(&self, f: impl FnOnce() + Send + 'static) {
            self.$($runner)+.on_stopped(f)
        }

        #[doc = concat!("Whether the ", $what, " has stopped for good (every handler returned).")]
        pub fn is_stopped(&self) -> bool {
            self.$($runner)+.is_finished()
        }
    };
}

/// Like [`client_methods!`], for async methods that return a handle with async methods of
/// its own: the blocking twin returns it wrapped in [`crate::blocking::Blocking`].
macro_rules! client_handles {
    ($(
        $(#[$attr:meta])*
        pub async fn $name:ident(&$self:ident $(, $arg:ident : $ty:ty)* $(,)?) -> Result<$ret:ty> $body:block
    )*) => {
        impl crate::client::Client {
            $(
                $(#[$attr])*
                pub async fn $name(&$self $(, $arg: $ty)*) -> Result<$ret> $body
            )*
        }

        impl crate::blocking::Client {
            $(
                #[doc = concat!(
                    "[`Client::", stringify!($name), "`](crate::Client::", stringify!($name),
                    "), waiting on the calling thread; the handle comes back as a ",
                    "[`Blocking`](crate::blocking::Blocking) one."
                )]
                pub fn $name(&$self $(, $arg: $ty)*) -> Result<crate::blocking::Blocking<$ret>> {
                    Ok($self.wrap($self.wait($self.as_async().$name($($arg),*))?))
                }
            )*
        }
    };
}
