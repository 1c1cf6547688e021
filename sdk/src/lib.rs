//! (being written)
#![allow(missing_docs)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../wit",
        world: "frontend",
        pub_export_macro: true,
        default_bindings_module: "hoist_frontend_sdk::bindings",
        export_macro_name: "__export_frontend_world",
        additional_derives: [PartialEq, Eq, Hash],
        additional_derives_ignore: ["solve-response", "platform-result", "build-result"],
        debug: true,
    });
}
