//! What a build of the product contains, read from cargo's own dependency resolution.

use std::process::Command;

/// The packages `cargo tree` lists for wxrisk with the given feature arguments, dev-dependencies included.
fn packages(features: &[&str]) -> Vec<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let output = Command::new(cargo)
        .args(["tree", "--offline", "--package", "wxrisk", "--prefix", "none", "--format", "{p}"])
        .args(features)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo tree runs");
    assert!(output.status.success(), "cargo tree: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.split_whitespace().next().map(str::to_owned))
        .collect()
}

/// The service needs its signing helpers, never the simulator: without the default `sim` feature (which only
/// `wxrisk sim`, the test suite and the bench need) wxsim is not in the tree at all, not even as a dev-dependency.
#[test]
fn a_build_without_the_sim_feature_contains_no_simulator() {
    let production = packages(&["--no-default-features"]);
    assert!(production.iter().any(|p| p == "protocols"), "{production:?}");
    assert!(!production.iter().any(|p| p == "wxsim"), "wxsim in a --no-default-features build: {production:?}");
    let default = packages(&[]);
    assert!(default.iter().any(|p| p == "wxsim"), "the default build has `wxrisk sim`: {default:?}");
}

/// The test command (`scripts/test`, which `.ci/run` calls) selects its targets so that no benchmark runs among the
/// tests: `--all-targets` means `--benches` as well, and cargo then runs every bench binary, `test = false` or not
/// (cargo's target selection; the benches also refuse to measure outside `cargo bench`, which passes `--bench`).
#[test]
fn the_test_command_runs_no_benchmark() {
    let path = format!("{}/../../scripts/test", env!("CARGO_MANIFEST_DIR"));
    let script = std::fs::read_to_string(&path).expect("scripts/test");
    let commands: Vec<&str> = script
        .lines()
        .map(str::trim)
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| line.find("cargo test").map(|at| &line[at..]))
        .collect();
    for command in &commands {
        let flags: Vec<&str> = command.split_whitespace().collect();
        for selects_benches in ["--all-targets", "--benches", "--bench"] {
            assert!(!flags.contains(&selects_benches), "`{command}` runs benchmarks ({selects_benches})");
        }
    }
    assert!(commands.iter().any(|c| c.contains("--tests")), "no cargo test command selects the tests: {commands:?}");
}
