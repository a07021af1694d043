//! oldabi: a shared object that exports berth's entry symbol with an ABI
//! version this berth does not speak, as a plugin built against another
//! release would. The engine must refuse it, naming both versions.

use std::os::raw::c_char;

use berth_plugin::abi::{Buffer, Descriptor};

unsafe extern "C" fn call(_: *const u8, _: usize, _: *const u8, _: usize) -> Buffer {
    Buffer::from_vec(b"{\"Err\":\"never called\"}".to_vec())
}

unsafe extern "C" fn free(b: Buffer) {
    // SAFETY: buffers come from `call` above, made by from_vec.
    drop(unsafe { b.reclaim() });
}

static DESCRIPTOR: Descriptor = Descriptor {
    abi_version: 999,
    name: c"oldabi".as_ptr() as *const c_char,
    interfaces: c"VolumeDriver".as_ptr() as *const c_char,
    call,
    free,
};

/// The entry point, with the wrong version inside.
#[no_mangle]
pub extern "C" fn berth_plugin_entry() -> *const Descriptor {
    &DESCRIPTOR
}
