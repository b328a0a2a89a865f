//! Records per second per core for each vendor parser, over the golden
//! sample records (the accepted ones), pseudonymisation included.
//!
//! cargo bench -p callpulse-adapters --bench parsers

use std::path::Path;

use callpulse_adapters::{AdaptContext, PracticeMapping, Pseudonymiser, Vendor};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

fn sample_records(dir: &str) -> (PracticeMapping, Vec<String>) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/samples")
        .join(dir);
    let mapping = PracticeMapping::load(&dir.join("mapping.toml")).unwrap();
    let input = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .find(|path| path.file_stem().is_some_and(|stem| stem == "input"))
        .unwrap();
    let text = std::fs::read_to_string(input).unwrap();
    (
        mapping,
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(str::to_string)
            .collect(),
    )
}

fn parsers(c: &mut Criterion) {
    let pseudonymiser = Pseudonymiser::new(&[7u8; 32]).unwrap();
    let mut group = c.benchmark_group("adapt_record");
    for (vendor, dir) in [
        (Vendor::Generic, "generic"),
        (Vendor::Twilio, "twilio"),
        (Vendor::AmazonConnect, "amazon-connect"),
        (Vendor::Asterisk, "asterisk"),
        (Vendor::Asterisk, "asterisk-queue-log"),
        (Vendor::Teams, "teams"),
    ] {
        let (mapping, lines) = sample_records(dir);
        let ctx = AdaptContext {
            mapping: &mapping,
            pseudonymiser: &pseudonymiser,
            received_at: None,
        };
        let accepted: Vec<String> = lines
            .into_iter()
            .filter(|line| vendor.adapt_record(line, &ctx).is_ok())
            .collect();
        assert!(!accepted.is_empty(), "{dir}");
        group.throughput(Throughput::Elements(accepted.len() as u64));
        group.bench_function(dir, |b| {
            b.iter(|| {
                let mut events = 0;
                for line in &accepted {
                    events += vendor
                        .adapt_record(line, &ctx)
                        .map(|e| e.len())
                        .unwrap_or(0);
                }
                events
            })
        });
    }
    group.finish();
}

criterion_group!(benches, parsers);
criterion_main!(benches);
