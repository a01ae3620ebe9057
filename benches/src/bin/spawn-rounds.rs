//! The whole library spawn of every [`benches::Variant`] (and of the default one with its
//! state root on a tmpfs), interleaved: `ROUNDS` rounds, in
//! each round `PER` spawns of each variant in turn, so that a burst of load on this shared
//! machine lands on every variant alike (criterion times one variant after the other). Writes
//! TSV lines `variant  median_ms  p90_ms  ratio` to OUT, where ratio is the median over rounds
//! of median(variant)/median(default) in that round; fails if a spawn fails or anything is
//! left behind.
//!
//! Usage: spawn-rounds ROUNDS PER OUT

use std::fmt::Write as _;
use std::time::Duration;

use benches::{SpawnFixture, Variant};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

fn quantile(mut v: Vec<f64>, q: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    if v.is_empty() {
        return f64::NAN;
    }
    let i = ((v.len() - 1) as f64 * q).round() as usize;
    v[i.min(v.len() - 1)]
}

fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [rounds, per, out] = args.as_slice() else {
        return Err("usage: spawn-rounds ROUNDS PER OUT".into());
    };
    let rounds: usize = rounds.parse().map_err(|e| format!("ROUNDS: {e}"))?;
    let per: usize = per.parse().map_err(|e| format!("PER: {e}"))?;
    let mut fixtures = Variant::ALL
        .iter()
        .map(|v| Ok((v.name().to_string(), SpawnFixture::new(*v)?)))
        .collect::<Result<Vec<_>, String>>()?;
    // An experiment: the default configuration with its state root on a tmpfs, where the
    // others have theirs in the temporary directory (on these machines an ext4 disk): what
    // the state dir's files cost the library spawn.
    fixtures.push((
        "default, state root on a tmpfs (/dev/shm)".into(),
        SpawnFixture::with_state_in(Variant::Default, std::path::Path::new("/dev/shm"))?,
    ));
    // Warm-up: one spawn of each.
    for (_, f) in &fixtures {
        f.spawn()?;
    }
    // times[variant][round] = spawn times (ms)
    let mut times: Vec<Vec<Vec<f64>>> = vec![Vec::new(); fixtures.len()];
    for _ in 0..rounds {
        for ((_, f), t) in fixtures.iter().zip(times.iter_mut()) {
            let mut round = Vec::with_capacity(per);
            for _ in 0..per {
                let d: Duration = f.spawn()?.total();
                round.push(d.as_secs_f64() * 1e3);
            }
            t.push(round);
        }
    }
    for (_, f) in &fixtures {
        f.check_clean()?;
    }
    let mut s = String::new();
    let base: Vec<f64> = times[0].iter().map(|r| median(r.clone())).collect();
    for (i, (name, _)) in fixtures.iter().enumerate() {
        let all: Vec<f64> = times[i].iter().flatten().copied().collect();
        let ratios: Vec<f64> = times[i]
            .iter()
            .zip(&base)
            .map(|(r, b)| median(r.clone()) / b)
            .collect();
        let _ = writeln!(
            s,
            "{}\t{:.3}\t{:.3}\t{:.3}",
            name,
            median(all.clone()),
            quantile(all, 0.9),
            median(ratios)
        );
    }
    std::fs::write(out, &s).map_err(|e| format!("{out}: {e}"))?;
    print!("{s}");
    Ok(())
}

fn main() {
    if let Err(e) = run() {
        eprintln!("spawn-rounds: {e}");
        std::process::exit(1);
    }
}
