//! The C ABI of an in-process plugin: a shared object exports one symbol,
//! [`ENTRY_SYMBOL`], a function returning a pointer to a static
//! [`Descriptor`]: the ABI version, the plugin's name, the interfaces it
//! implements (Docker's names, comma-separated) and `call`, which takes a
//! method (`/VolumeDriver.Create`, ...) and its JSON request and answers
//! with a JSON response the caller gives back through `free`.
//!
//! A driver author never writes this by hand: [`export_plugin!`] exports a
//! type implementing [`Plugin`] and keeps panics from crossing the boundary
//! (a panic becomes an error response). The engine's loader checks
//! [`ABI_VERSION`] before anything else.

use std::os::raw::c_char;

/// The version of this ABI: a loader refuses any other.
pub const ABI_VERSION: u32 = 1;

/// The symbol every plugin exports (NUL-terminated, for `dlsym`).
pub const ENTRY_SYMBOL: &[u8] = b"berth_plugin_entry\0";

/// Bytes handed across the boundary; a response is owned by the plugin
/// until given back through [`Descriptor::free`].
#[repr(C)]
pub struct Buffer {
    pub ptr: *mut u8,
    pub len: usize,
    pub cap: usize,
}

impl Buffer {
    /// Hands `bytes` over (to be given back to [`Buffer::reclaim`]).
    pub fn from_vec(bytes: Vec<u8>) -> Buffer {
        let mut bytes = std::mem::ManuallyDrop::new(bytes);
        Buffer {
            ptr: bytes.as_mut_ptr(),
            len: bytes.len(),
            cap: bytes.capacity(),
        }
    }

    /// Takes back what [`Buffer::from_vec`] handed over.
    ///
    /// # Safety
    /// `self` must come from `from_vec` in the same shared object and not
    /// have been reclaimed before.
    pub unsafe fn reclaim(self) -> Vec<u8> {
        // SAFETY: the caller guarantees the parts are those of a Vec made
        // by from_vec with this allocator.
        unsafe { Vec::from_raw_parts(self.ptr, self.len, self.cap) }
    }
}

/// What the entry symbol returns.
#[repr(C)]
pub struct Descriptor {
    pub abi_version: u32,
    /// The plugin's name, NUL-terminated, static.
    pub name: *const c_char,
    /// The interfaces it implements, comma-separated, NUL-terminated, static.
    pub interfaces: *const c_char,
    /// Answers `method` with `request` (both UTF-8 bytes).
    pub call: unsafe extern "C" fn(method: *const u8, method_len: usize, request: *const u8, request_len: usize) -> Buffer,
    /// Gives a response back.
    pub free: unsafe extern "C" fn(Buffer),
}

// SAFETY: a descriptor only holds pointers to static, immutable data and
// to functions; sharing or moving it between threads is sound.
unsafe impl Sync for Descriptor {}
// SAFETY: as above.
unsafe impl Send for Descriptor {}

/// The type of the entry symbol.
pub type EntryFn = unsafe extern "C" fn() -> *const Descriptor;

/// What a plugin implements: a name, its interfaces, and an answer to
/// each method of Docker's plugin protocol.
pub trait Plugin: Send + Sync {
    fn name(&self) -> &'static str;
    /// Docker's interface names: `VolumeDriver`, `NetworkDriver`, ...
    fn interfaces(&self) -> Vec<&'static str>;
    /// The JSON response to `method` with the JSON `request`.
    fn call(&self, method: &str, request: &[u8]) -> Vec<u8>;
}

/// The error response of Docker's protocol: `{"Err": "..."}`.
pub fn error_response(message: &str) -> Vec<u8> {
    serde_json::json!({ "Err": message }).to_string().into_bytes()
}

/// Runs `plugin.call` for the C entry, a panic becoming an error response.
///
/// # Safety
/// `method` and `request` must point to `method_len` and `request_len`
/// readable bytes (or be null with a zero length).
pub unsafe fn dispatch(plugin: &dyn Plugin, method: *const u8, method_len: usize, request: *const u8, request_len: usize) -> Buffer {
    let bytes = |p: *const u8, len: usize| -> &[u8] {
        if p.is_null() || len == 0 {
            &[]
        } else {
            // SAFETY: the caller guarantees `len` readable bytes at `p`.
            unsafe { std::slice::from_raw_parts(p, len) }
        }
    };
    let method = String::from_utf8_lossy(bytes(method, method_len)).into_owned();
    let request = bytes(request, request_len);
    let answered = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| plugin.call(&method, request)));
    Buffer::from_vec(answered.unwrap_or_else(|panic| {
        let why = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        error_response(&format!("plugin {} panicked in {method}: {why}", plugin.name()))
    }))
}

/// The plugin `cell` holds, built by `make` on first use; `None` when
/// building it panicked (the panic stays on this side of the boundary).
pub fn built(cell: &'static std::sync::OnceLock<Box<dyn Plugin>>, make: impl FnOnce() -> Box<dyn Plugin>) -> Option<&'static dyn Plugin> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| cell.get_or_init(make).as_ref())).ok()
}

/// The plugin's name and interfaces as C strings; `None` when asking
/// panicked or a name holds a NUL.
pub fn names(plugin: &dyn Plugin) -> Option<(std::ffi::CString, std::ffi::CString)> {
    let asked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (plugin.name(), plugin.interfaces().join(",")))).ok()?;
    Some((std::ffi::CString::new(asked.0).ok()?, std::ffi::CString::new(asked.1).ok()?))
}

/// Exports `$make` (an expression building a [`Plugin`]) as this shared
/// object's plugin: the entry symbol, its descriptor, and the calls. A
/// panic while building the plugin gives the loader no descriptor.
#[macro_export]
macro_rules! export_plugin {
    ($make:expr) => {
        fn __berth_plugin() -> ::std::option::Option<&'static dyn $crate::abi::Plugin> {
            static PLUGIN: ::std::sync::OnceLock<::std::boxed::Box<dyn $crate::abi::Plugin>> = ::std::sync::OnceLock::new();
            $crate::abi::built(&PLUGIN, || ::std::boxed::Box::new($make))
        }

        unsafe extern "C" fn __berth_plugin_call(
            method: *const u8,
            method_len: usize,
            request: *const u8,
            request_len: usize,
        ) -> $crate::abi::Buffer {
            match __berth_plugin() {
                // SAFETY: the loader passes valid (pointer, length) pairs.
                Some(p) => unsafe { $crate::abi::dispatch(p, method, method_len, request, request_len) },
                None => $crate::abi::Buffer::from_vec($crate::abi::error_response("the plugin could not be built (it panicked)")),
            }
        }

        unsafe extern "C" fn __berth_plugin_free(b: $crate::abi::Buffer) {
            // SAFETY: the loader gives back only buffers this object made.
            drop(unsafe { b.reclaim() });
        }

        /// The plugin's entry point (see `berth_plugin::abi`).
        #[no_mangle]
        pub extern "C" fn berth_plugin_entry() -> *const $crate::abi::Descriptor {
            static NAMES: ::std::sync::OnceLock<(::std::ffi::CString, ::std::ffi::CString)> = ::std::sync::OnceLock::new();
            static DESCRIPTOR: ::std::sync::OnceLock<$crate::abi::Descriptor> = ::std::sync::OnceLock::new();
            if let Some(d) = DESCRIPTOR.get() {
                return d;
            }
            let Some(names) = NAMES.get().cloned().or_else(|| __berth_plugin().and_then($crate::abi::names)) else {
                return ::std::ptr::null();
            };
            let (name, interfaces) = NAMES.get_or_init(|| names);
            DESCRIPTOR.get_or_init(|| $crate::abi::Descriptor {
                abi_version: $crate::abi::ABI_VERSION,
                name: name.as_ptr(),
                interfaces: interfaces.as_ptr(),
                call: __berth_plugin_call,
                free: __berth_plugin_free,
            })
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Echo;

    impl Plugin for Echo {
        fn name(&self) -> &'static str {
            "echo"
        }
        fn interfaces(&self) -> Vec<&'static str> {
            vec!["VolumeDriver"]
        }
        fn call(&self, method: &str, request: &[u8]) -> Vec<u8> {
            if method == "/Boom" {
                panic!("on purpose");
            }
            let mut out = method.as_bytes().to_vec();
            out.extend_from_slice(request);
            out
        }
    }

    crate::export_plugin!(Echo);

    struct Nameless;
    impl Plugin for Nameless {
        fn name(&self) -> &'static str {
            panic!("no name")
        }
        fn interfaces(&self) -> Vec<&'static str> {
            vec![]
        }
        fn call(&self, _: &str, _: &[u8]) -> Vec<u8> {
            vec![]
        }
    }

    #[test]
    fn panics_building_or_naming_a_plugin_stay_inside() {
        static NEVER: std::sync::OnceLock<Box<dyn Plugin>> = std::sync::OnceLock::new();
        assert!(built(&NEVER, || panic!("cannot build")).is_none());
        assert!(names(&Nameless).is_none());
        assert!(names(&Echo).is_some());
    }

    fn call(d: &Descriptor, method: &str, request: &[u8]) -> Vec<u8> {
        // SAFETY: valid slices; the buffer goes back through the descriptor.
        unsafe {
            let b = (d.call)(method.as_ptr(), method.len(), request.as_ptr(), request.len());
            let out = std::slice::from_raw_parts(b.ptr, b.len).to_vec();
            (d.free)(b);
            out
        }
    }

    #[test]
    fn the_entry_describes_the_plugin_and_panics_become_errors() {
        // SAFETY: the descriptor is static, its strings NUL-terminated.
        let d = unsafe { &*berth_plugin_entry() };
        assert_eq!(d.abi_version, ABI_VERSION);
        // SAFETY: as above.
        let name = unsafe { std::ffi::CStr::from_ptr(d.name) };
        assert_eq!(name.to_str().unwrap(), "echo");
        // SAFETY: as above.
        let interfaces = unsafe { std::ffi::CStr::from_ptr(d.interfaces) };
        assert_eq!(interfaces.to_str().unwrap(), "VolumeDriver");
        assert_eq!(call(d, "/A", b"{}"), b"/A{}");
        let e: serde_json::Value = serde_json::from_slice(&call(d, "/Boom", b"")).unwrap();
        assert!(e["Err"].as_str().unwrap().contains("panicked in /Boom: on purpose"), "{e}");
        assert_eq!(call(d, "/A", b""), b"/A", "the plugin still answers after a panic");
    }
}
