//! The monitor of an engine container alone: `corral-engine-monitor --root R --store S
//! _monitor ID`, what `corral _monitor` runs (see `corral_engine::monitor_main`).

fn main() {
    let mut args = std::env::args().skip(1);
    let (mut root, mut store, mut id) = (None, None, None);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--root" => root = args.next(),
            "--store" => store = args.next(),
            "_monitor" => id = args.next(),
            _ => {}
        }
    }
    let (Some(root), Some(store), Some(id)) = (root, store, id) else {
        eprintln!("usage: corral-engine-monitor --root R --store S _monitor ID");
        std::process::exit(125);
    };
    std::process::exit(corral_engine::monitor_main(
        std::path::Path::new(&store),
        std::path::Path::new(&root),
        &id,
    ));
}
