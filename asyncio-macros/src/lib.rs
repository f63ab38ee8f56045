//! Attribute macros for the `asyncio` runtime.
//!
//! These macros are re-exported by the library as `asyncio::main` and
//! `asyncio::test`; use them through that path rather than depending on this
//! crate directly.
//!
//! # `#[asyncio::main]`
//!
//! Turns an `async fn` without arguments into a plain function that runs its
//! body to completion on a fresh event loop via `asyncio::run`:
//!
//! ```ignore
//! #[asyncio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     asyncio::sleep(std::time::Duration::from_millis(10)).await;
//!     Ok(())
//! }
//! ```
//!
//! With `#[asyncio::main(virtual_time)]` the loop runs on a virtual clock
//! (`Runner::builder().virtual_time(true)`), so sleeps complete instantly.
//!
//! # `#[asyncio::test]`
//!
//! Turns an `async fn` without arguments into a `#[test]` function whose body
//! runs on a fresh `asyncio::Runner`. Other attributes such as
//! `#[should_panic]` or `#[ignore]` are kept:
//!
//! ```ignore
//! #[asyncio::test(virtual_time)]
//! async fn sleeps_instantly() {
//!     asyncio::sleep(std::time::Duration::from_secs(3600)).await;
//! }
//! ```
//!
//! The only accepted option for either macro is `virtual_time`.
#![deny(missing_docs)]

use proc_macro::TokenStream;
use proc_macro2::TokenStream as TokenStream2;
use quote::quote;
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Error, ItemFn, Meta, Token};

/// Runs an `async fn` (typically `main`) to completion on a fresh event loop.
///
/// Accepts the option `virtual_time`. See the crate documentation for details.
#[proc_macro_attribute]
pub fn main(attr: TokenStream, item: TokenStream) -> TokenStream {
    finish(expand(Kind::Main, attr.into(), item.clone().into()), item)
}

/// Marks an `async fn` as a test whose body runs on a fresh `asyncio::Runner`.
///
/// Accepts the option `virtual_time`. See the crate documentation for details.
#[proc_macro_attribute]
pub fn test(attr: TokenStream, item: TokenStream) -> TokenStream {
    finish(expand(Kind::Test, attr.into(), item.clone().into()), item)
}

/// On error, emit the error next to the untouched item so that follow-up
/// diagnostics (and IDE support) still see the function.
fn finish(result: syn::Result<TokenStream2>, item: TokenStream) -> TokenStream {
    match result {
        Ok(tokens) => tokens.into(),
        Err(err) => {
            let mut out: TokenStream = err.to_compile_error().into();
            out.extend(item);
            out
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Main,
    Test,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Main => "#[asyncio::main]",
            Kind::Test => "#[asyncio::test]",
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Options {
    virtual_time: bool,
}

const ACCEPTED: &str = "accepted options: `virtual_time`";

fn parse_options(attr: TokenStream2) -> syn::Result<Options> {
    let metas = Punctuated::<Meta, Token![,]>::parse_terminated.parse2(attr)?;
    let mut options = Options::default();
    for meta in metas {
        match &meta {
            Meta::Path(path) if path.is_ident("virtual_time") => {
                if options.virtual_time {
                    return Err(Error::new(meta.span(), "duplicate option `virtual_time`"));
                }
                options.virtual_time = true;
            }
            _ => {
                let msg = format!("unknown option; {ACCEPTED}");
                return Err(Error::new(meta.span(), msg));
            }
        }
    }
    Ok(options)
}

fn expand(kind: Kind, attr: TokenStream2, item: TokenStream2) -> syn::Result<TokenStream2> {
    let options = parse_options(attr)?;
    let mut func: ItemFn = syn::parse2(item)?;
    let sig = &mut func.sig;
    if sig.asyncness.is_none() {
        let msg = format!("{} requires an `async fn`", kind.name());
        return Err(Error::new(sig.fn_token.span, msg));
    }
    if !sig.inputs.is_empty() {
        let msg = format!("{} functions cannot take arguments", kind.name());
        return Err(Error::new(sig.inputs.span(), msg));
    }
    if kind == Kind::Test {
        if let Some(attr) = func.attrs.iter().find(|a| a.path().is_ident("test")) {
            let msg = "#[asyncio::test] already adds #[test]; remove this attribute";
            return Err(Error::new(attr.span(), msg));
        }
    }
    sig.asyncness = None;

    let block = &func.block;
    let future = quote! { async move #block };
    let virtual_time = options.virtual_time.then(|| quote! { .virtual_time(true) });
    let body = match (kind, options.virtual_time) {
        (Kind::Main, false) => quote! { ::asyncio::run(#future) },
        _ => quote! {
            let mut runner = ::asyncio::Runner::builder() #virtual_time .build();
            runner.run(#future)
        },
    };
    let test_attr = (kind == Kind::Test).then(|| quote! { #[::core::prelude::v1::test] });
    let ItemFn {
        attrs, vis, sig, ..
    } = &func;
    Ok(quote! {
        #test_attr
        #(#attrs)*
        #vis #sig {
            #body
        }
    })
}

#[cfg(test)]
mod tests {
    use super::{expand, parse_options, Kind, Options, TokenStream2};
    use quote::quote;

    fn expand_str(kind: Kind, attr: TokenStream2, item: TokenStream2) -> String {
        expand(kind, attr, item).unwrap().to_string()
    }

    fn expand_err(kind: Kind, attr: TokenStream2, item: TokenStream2) -> String {
        expand(kind, attr, item).unwrap_err().to_string()
    }

    #[test]
    fn options_parse() {
        assert_eq!(parse_options(quote! {}).unwrap(), Options::default());
        assert!(parse_options(quote! { virtual_time }).unwrap().virtual_time);
        assert!(
            parse_options(quote! { virtual_time, })
                .unwrap()
                .virtual_time
        );
    }

    #[test]
    fn options_reject_unknown_and_duplicates() {
        for attr in [
            quote! { fast },
            quote! { virtual_time = true },
            quote! { a(b) },
        ] {
            let err = parse_options(attr).unwrap_err().to_string();
            assert!(err.contains("virtual_time"), "{err}");
        }
        let err = parse_options(quote! { virtual_time, virtual_time }).unwrap_err();
        assert!(err.to_string().contains("duplicate"));
    }

    #[test]
    fn main_expands_to_run() {
        let out = expand_str(
            Kind::Main,
            quote! {},
            quote! { #[allow(unused)] pub async fn main() -> u8 { 1 } },
        );
        let want = quote! {
            #[allow(unused)]
            pub fn main() -> u8 { ::asyncio::run(async move { 1 }) }
        };
        assert_eq!(out, want.to_string());
    }

    #[test]
    fn main_virtual_time_uses_runner() {
        let out = expand_str(
            Kind::Main,
            quote! { virtual_time },
            quote! { async fn main() {} },
        );
        let want = quote! {
            fn main() {
                let mut runner = ::asyncio::Runner::builder().virtual_time(true).build();
                runner.run(async move {})
            }
        };
        assert_eq!(out, want.to_string());
    }

    #[test]
    fn test_expands_with_test_attr_and_keeps_attrs() {
        let out = expand_str(
            Kind::Test,
            quote! {},
            quote! { #[should_panic] async fn t() { panic!() } },
        );
        let want = quote! {
            #[::core::prelude::v1::test]
            #[should_panic]
            fn t() {
                let mut runner = ::asyncio::Runner::builder().build();
                runner.run(async move { panic!() })
            }
        };
        assert_eq!(out, want.to_string());
        let out = expand_str(
            Kind::Test,
            quote! { virtual_time },
            quote! { async fn t() {} },
        );
        assert!(out.contains(". virtual_time (true)"), "{out}");
    }

    #[test]
    fn rejects_bad_functions() {
        let err = expand_err(Kind::Main, quote! {}, quote! { fn main() {} });
        assert!(err.contains("requires an `async fn`"), "{err}");
        let err = expand_err(Kind::Test, quote! {}, quote! { async fn t(x: u8) {} });
        assert!(err.contains("cannot take arguments"), "{err}");
        let err = expand_err(Kind::Test, quote! {}, quote! { #[test] async fn t() {} });
        assert!(err.contains("already adds #[test]"), "{err}");
        let err = expand_err(Kind::Test, quote! { nope }, quote! { async fn t() {} });
        assert!(err.contains("accepted options"), "{err}");
    }
}
