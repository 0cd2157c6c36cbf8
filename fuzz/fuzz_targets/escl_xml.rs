//! eSCL XML from the network (scan settings a client posts to the bridge, capabilities and status a device
//! answers): parsed or refused, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scanner_drivers::escl;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(request) = escl::parse_scan_settings(text) {
            // What parses must write back to something that parses the same.
            let again = escl::parse_scan_settings(&escl::scan_settings_xml(&request));
            assert_eq!(again.as_ref(), Ok(&request));
        }
        let _ = escl::parse_capabilities(text);
    }
});
