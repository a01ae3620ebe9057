//! `linux.seccomp` JSON bytes → policy (`runtime::filter::policy`) → BPF
//! (`seccomp::compile`). The compiled program must be well formed: non-empty, at most the
//! kernel's 4096 instructions (or an error saying so), every jump inside the program, and it
//! must end in a return.
#![no_main]

use libfuzzer_sys::fuzz_target;
use oci_spec::runtime::LinuxSeccomp;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = serde_json::from_slice::<LinuxSeccomp>(data) else {
        return;
    };
    let Ok(policy) = runtime::filter::policy(&s) else {
        return;
    };
    let Ok(prog) = seccomp::compile(&policy) else {
        return;
    };
    let f = runtime::filter::to_plan(&prog).filter;
    assert!(!f.is_empty(), "empty program");
    assert!(
        f.len() <= 4096,
        "{} instructions, over the kernel's limit",
        f.len()
    );
    for (i, ins) in f.iter().enumerate() {
        let class = ins.code & 0x07;
        if class == 0x05 {
            // BPF_JMP: BPF_JA jumps k, the conditional ones jt/jf.
            let targets: Vec<usize> = if ins.code & 0xf0 == 0x00 {
                vec![i + 1 + ins.k as usize]
            } else {
                vec![i + 1 + ins.jt as usize, i + 1 + ins.jf as usize]
            };
            for t in targets {
                assert!(
                    t < f.len(),
                    "instruction {i} jumps to {t}, past the end ({})",
                    f.len()
                );
            }
        }
    }
    let last = f[f.len() - 1];
    assert_eq!(
        last.code & 0x07,
        0x06,
        "the program does not end in a return"
    );
});
