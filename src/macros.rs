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
    ($(
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
                    $self.wait($self.as_async().$name($($arg),*))
                }
            )*
        }
    };
}
