//! `cargo xtask bench`: run every criterion suite, then write the report.

use std::process::Command;

/// What the user asked `cargo xtask bench` for.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Criterion's `--quick` mode: a smoke test of every workload in a couple of minutes.
    pub quick: bool,
    /// Only benchmarks whose id contains this text.
    pub filter: Option<String>,
    /// Save this run as a named criterion baseline.
    pub save_baseline: Option<String>,
    /// Compare this run with a named criterion baseline.
    pub baseline: Option<String>,
}

impl Options {
    fn parse(args: &[String]) -> Result<Options, String> {
        let mut options = Options::default();
        let mut iter = args.iter();
        while let Some(arg) = iter.next() {
            let mut value =
                |flag: &str| iter.next().cloned().ok_or(format!("{flag} needs a value"));
            match arg.as_str() {
                "--quick" => options.quick = true,
                "--filter" => options.filter = Some(value("--filter")?),
                "--save-baseline" => options.save_baseline = Some(value("--save-baseline")?),
                "--baseline" => options.baseline = Some(value("--baseline")?),
                other => return Err(format!("unknown bench option {other}\n{}", crate::USAGE)),
            }
        }
        Ok(options)
    }

    /// The arguments passed through to each criterion binary.
    fn criterion_args(&self) -> Vec<String> {
        let mut args = vec!["--noplot".to_string()];
        if self.quick {
            args.push("--quick".into());
        }
        if let Some(name) = &self.save_baseline {
            args.extend(["--save-baseline".into(), name.clone()]);
        }
        if let Some(name) = &self.baseline {
            args.extend(["--baseline".into(), name.clone()]);
        }
        if let Some(filter) = &self.filter {
            args.push(filter.clone());
        }
        args
    }
}

/// Runs the suites one by one (so a failing suite does not hide the others) and writes the report.
pub fn run(args: &[String]) -> Result<(), String> {
    let options = Options::parse(args)?;
    let workspace = crate::Workspace::load()?;
    let suites: Vec<(&str, &str)> = workspace
        .benches
        .iter()
        .flat_map(|(package, benches)| benches.iter().map(move |b| (package.as_str(), b.as_str())))
        .collect();
    if suites.is_empty() {
        return Err("no criterion suites found in the workspace".into());
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut failed = Vec::new();
    for (index, (package, bench)) in suites.iter().enumerate() {
        eprintln!("\n[{}/{}] {package} / {bench}", index + 1, suites.len());
        let status = Command::new(&cargo)
            .args(["bench", "--quiet", "-p", package, "--bench", bench, "--"])
            .args(options.criterion_args())
            .current_dir(&workspace.root)
            .status()
            .map_err(|e| format!("cannot run cargo bench: {e}"))?;
        if !status.success() {
            failed.push(format!("{package}/{bench}"));
        }
    }
    let summary = crate::report::write_from_criterion(&options)?;
    println!("{summary}");
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!("these suites failed: {}", failed.join(", ")))
    }
}
