//! Test-only crate: `tests/cri.rs` drives containerd's CRI plugin (Kubernetes' Container
//! Runtime Interface) with a client of its own, built on the `k8s-cri` bindings, and
//! compares the `runc` and `corral` runtime handlers case by case. Keeping the gRPC stack
//! here, as dev-dependencies of a crate nothing depends on, keeps it out of the corral
//! binary.
