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
