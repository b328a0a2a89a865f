//! The shipped synthetic organisations file (`data/organisations.csv`),
//! generated deterministically: `callpulse orgs generate --out FILE`.
//!
//! Shapes follow the real ones: 7 NHS England regions with their real codes
//! and names; 42 ICBs modelled on the 42 real ones (codes and areas as known
//! to the author, not an authoritative list); 106 sub-ICB locations with
//! codes of the former-CCG shapes (`08F`, `D4U1Y`); 1,227 PCNs
//! (`U` + 5 digits); 6,340 practices whose codes carry the regional letter
//! and area number of real ones (`A81001` in the North East, `E83...` and
//! `F84...` in London, `Y0....` for newer practices). Everything below the
//! ICB (codes, names, postcodes, dates) is made up. Practices `A81001` to
//! `A81060` (the simulator's) come first, all open, without gaps.

use std::collections::HashSet;
use std::io::Write;

use chrono::NaiveDate;

use super::{Practice, DATE_COLUMNS, NHS_DIGITAL_COLUMNS};

/// A practice with the columns of the file that are not stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntheticPractice {
    pub practice: Practice,
    pub ons_sub_icb_code: String,
    pub ons_icb_code: String,
    pub ons_region_code: String,
    pub supplier: &'static str,
}

struct Region {
    code: &'static str,
    name: &'static str,
    ons: &'static str,
    /// First letters of the region's practice codes.
    letters: &'static [u8],
    postcode_areas: &'static [&'static str],
}

/// In generation order: the North East first, so that its first sub-ICB location gets `A81`.
const REGIONS: [Region; 7] = [
    Region {
        code: "Y63",
        name: "North East and Yorkshire",
        ons: "E40000012",
        letters: b"AB",
        postcode_areas: &[
            "NE", "SR", "DH", "TS", "DL", "CA", "YO", "HU", "DN", "S", "LS", "BD", "HD", "WF",
        ],
    },
    Region {
        code: "Y62",
        name: "North West",
        ons: "E40000010",
        letters: b"NP",
        postcode_areas: &[
            "M", "BL", "OL", "SK", "WN", "WA", "L", "CH", "CW", "PR", "BB", "LA", "FY",
        ],
    },
    Region {
        code: "Y60",
        name: "Midlands",
        ons: "E40000011",
        letters: b"MC",
        postcode_areas: &[
            "B", "WV", "DY", "WS", "CV", "WR", "HR", "LE", "LN", "NN", "NG", "SY", "TF", "ST", "DE",
        ],
    },
    Region {
        code: "Y61",
        name: "East of England",
        ons: "E40000007",
        letters: b"D",
        postcode_areas: &[
            "CB", "PE", "IP", "NR", "CM", "SS", "CO", "AL", "SG", "LU", "MK",
        ],
    },
    Region {
        code: "Y56",
        name: "London",
        ons: "E40000003",
        letters: b"EF",
        postcode_areas: &[
            "N", "E", "SE", "SW", "W", "NW", "HA", "UB", "TW", "CR", "BR", "RM", "IG", "EN",
        ],
    },
    Region {
        code: "Y59",
        name: "South East",
        ons: "E40000005",
        letters: b"GHK",
        postcode_areas: &[
            "GU", "RH", "ME", "CT", "TN", "BN", "PO", "SO", "RG", "OX", "HP", "SL",
        ],
    },
    Region {
        code: "Y58",
        name: "South West",
        ons: "E40000006",
        letters: b"JL",
        postcode_areas: &[
            "BA", "SN", "BS", "TR", "PL", "EX", "TQ", "DT", "BH", "GL", "TA",
        ],
    },
];

struct Icb {
    code: &'static str,
    area: &'static str,
    region: &'static str,
    sub_icbs: usize,
    practices: usize,
}

const fn icb(
    code: &'static str,
    area: &'static str,
    region: &'static str,
    sub_icbs: usize,
    practices: usize,
) -> Icb {
    Icb {
        code,
        area,
        region,
        sub_icbs,
        practices,
    }
}

const ICBS: [Icb; 42] = [
    icb("QHM", "North East and North Cumbria", "Y63", 8, 340),
    icb("QOQ", "Humber and North Yorkshire", "Y63", 5, 200),
    icb("QF7", "South Yorkshire", "Y63", 5, 180),
    icb("QWO", "West Yorkshire", "Y63", 5, 280),
    icb("QE1", "Lancashire and South Cumbria", "Y62", 4, 210),
    icb("QOP", "Greater Manchester", "Y62", 10, 420),
    icb("QYG", "Cheshire and Merseyside", "Y62", 9, 370),
    icb("QHL", "Birmingham and Solihull", "Y60", 1, 140),
    icb("QUA", "Black Country", "Y60", 4, 150),
    icb("QWU", "Coventry and Warwickshire", "Y60", 2, 90),
    icb("QGH", "Herefordshire and Worcestershire", "Y60", 1, 90),
    icb("QK1", "Leicester Leicestershire and Rutland", "Y60", 3, 130),
    icb("QJM", "Lincolnshire", "Y60", 1, 80),
    icb("QPM", "Northamptonshire", "Y60", 1, 70),
    icb("QT1", "Nottingham and Nottinghamshire", "Y60", 2, 120),
    icb("QOC", "Shropshire Telford and Wrekin", "Y60", 1, 50),
    icb("QNC", "Staffordshire and Stoke-on-Trent", "Y60", 2, 120),
    icb("QJ2", "Derby and Derbyshire", "Y60", 1, 90),
    icb("QM7", "Hertfordshire and West Essex", "Y61", 2, 140),
    icb("QH8", "Mid and South Essex", "Y61", 3, 140),
    icb("QMM", "Norfolk and Waveney", "Y61", 1, 105),
    icb("QJG", "Suffolk and North East Essex", "Y61", 2, 90),
    icb("QUE", "Cambridgeshire and Peterborough", "Y61", 1, 90),
    icb("QHG", "Bedfordshire Luton and Milton Keynes", "Y61", 3, 95),
    icb("QMJ", "North Central London", "Y56", 1, 180),
    icb("QMF", "North East London", "Y56", 1, 220),
    icb("QRV", "North West London", "Y56", 1, 330),
    icb("QKK", "South East London", "Y56", 1, 200),
    icb("QWE", "South West London", "Y56", 1, 170),
    icb("QNQ", "Frimley", "Y59", 2, 70),
    icb("QXU", "Surrey Heartlands", "Y59", 1, 100),
    icb("QKS", "Kent and Medway", "Y59", 1, 190),
    icb("QNX", "Sussex", "Y59", 3, 160),
    icb("QRL", "Hampshire and Isle of Wight", "Y59", 5, 190),
    icb(
        "QU9",
        "Buckinghamshire Oxfordshire and Berkshire West",
        "Y59",
        3,
        180,
    ),
    icb(
        "QOX",
        "Bath and North East Somerset Swindon and Wiltshire",
        "Y58",
        3,
        90,
    ),
    icb(
        "QUY",
        "Bristol North Somerset and South Gloucestershire",
        "Y58",
        1,
        80,
    ),
    icb("QT6", "Cornwall and the Isles of Scilly", "Y58", 1, 60),
    icb("QJK", "Devon", "Y58", 1, 120),
    icb("QVV", "Dorset", "Y58", 1, 80),
    icb("QR1", "Gloucestershire", "Y58", 1, 70),
    icb("QSL", "Somerset", "Y58", 1, 60),
];

/// The simulator's practices (`A81001`, `A81002`, ...) all lie in the first
/// sub-ICB location, open and without gaps.
pub const SIMULATOR_PRACTICES: usize = 60;

const WORDS: &[&str] = &[
    "Abbey",
    "Ashgrove",
    "Beech",
    "Birch",
    "Bridge",
    "Brook",
    "Castle",
    "Cedar",
    "Chapel",
    "Church",
    "Elm",
    "Fern",
    "Field",
    "Grange",
    "Green",
    "Hawthorn",
    "Heath",
    "Hill",
    "Holly",
    "Kings",
    "Lakeside",
    "Larch",
    "Manor",
    "Maple",
    "Market",
    "Meadow",
    "Mill",
    "Oak",
    "Orchard",
    "Park",
    "Priory",
    "Queens",
    "Riverside",
    "Rose",
    "Station",
    "Tower",
    "Vale",
    "Valley",
    "Victoria",
    "Willow",
    "Woodland",
    "Yew",
];
const SURNAMES: &[&str] = &[
    "Ahmed", "Brown", "Clarke", "Davies", "Evans", "Green", "Hall", "Hughes", "Jones", "Khan",
    "Lewis", "Martin", "Patel", "Roberts", "Shah", "Singh", "Smith", "Taylor", "Thomas", "Walker",
    "White", "Wilson", "Wood", "Wright",
];
const PRACTICE_KINDS: &[&str] = &[
    "Surgery",
    "Medical Centre",
    "Health Centre",
    "Medical Practice",
    "Family Practice",
    "Group Practice",
];
const TOWN_STEMS: &[&str] = &[
    "Ash", "Brad", "Brom", "Cal", "Chad", "Der", "Eld", "Fair", "Glen", "Ham", "Hart", "Kings",
    "Lang", "Lin", "Mar", "Mel", "Nor", "Old", "Pen", "Red", "Rock", "Shel", "Stan", "Thorn",
    "Wal", "West", "Whit", "Wind",
];
const TOWN_ENDINGS: &[&str] = &[
    "ford", "ley", "ton", "bury", "field", "wick", "worth", "ham", "by", "thorpe", "well", "dale",
    "stead", "mouth",
];
const DIRECTIONS: &[&str] = &["North", "South", "East", "West", "Central"];
/// Letters of the inward part of real postcodes.
const POSTCODE_LETTERS: &[u8] = b"ABDEFGHJLNPQRSTUWXYZ";
/// Letters of sub-ICB codes (no I or O, which read as digits).
const CODE_LETTERS: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ";

/// SplitMix64: small, fast and the same everywhere.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `low..=high`.
    fn range(&mut self, low: u64, high: u64) -> u64 {
        low + self.next() % (high - low + 1)
    }
    fn chance(&mut self, per_thousand: u64) -> bool {
        self.next() % 1000 < per_thousand
    }
    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[(self.next() % items.len() as u64) as usize]
    }
}

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap_or_default()
}

fn town(rng: &mut Rng) -> String {
    format!("{}{}", rng.pick(TOWN_STEMS), rng.pick(TOWN_ENDINGS))
}

fn practice_name(rng: &mut Rng) -> String {
    match rng.range(0, 9) {
        0 | 1 => format!("Dr {} and Partners", rng.pick(SURNAMES)),
        2 => format!("The {} Practice", rng.pick(WORDS)),
        3 => format!("{} Road Surgery", rng.pick(WORDS)),
        4 => format!("{} {}", town(rng), rng.pick(PRACTICE_KINDS)),
        _ => format!("{} {}", rng.pick(WORDS), rng.pick(PRACTICE_KINDS)),
    }
}

fn pcn_name(rng: &mut Rng) -> String {
    match rng.range(0, 5) {
        0 => format!("{} {} PCN", rng.pick(DIRECTIONS), town(rng)),
        1 => format!("{} and {} PCN", town(rng), town(rng)),
        2 => format!("{} Health Network PCN", town(rng)),
        _ => format!("{} PCN", town(rng)),
    }
}

fn sub_icb_code(rng: &mut Rng, taken: &mut HashSet<String>) -> String {
    loop {
        let code = if rng.chance(120) {
            let mut code = String::new();
            for i in 0..5 {
                code.push(if i % 2 == 0 {
                    rng.pick(CODE_LETTERS) as char
                } else {
                    char::from(b'0' + rng.range(0, 9) as u8)
                });
            }
            code
        } else {
            format!("{:02}{}", rng.range(0, 99), rng.pick(CODE_LETTERS) as char)
        };
        if taken.insert(code.clone()) {
            return code;
        }
    }
}

/// Splits `total` into `parts` sizes of similar weight; `first` fixes the first size.
fn split(rng: &mut Rng, total: usize, parts: usize, first: Option<usize>) -> Vec<usize> {
    let mut sizes = Vec::with_capacity(parts);
    let mut rest = total;
    let mut parts_left = parts;
    if let Some(first) = first {
        sizes.push(first);
        rest -= first;
        parts_left -= 1;
    }
    let weights: Vec<u64> = (0..parts_left).map(|_| rng.range(70, 130)).collect();
    let sum: u64 = weights.iter().sum();
    let mut given = 0;
    for (i, weight) in weights.iter().enumerate() {
        let size = if i + 1 == parts_left {
            rest - given
        } else {
            (rest as u64 * weight / sum) as usize
        };
        given += size;
        sizes.push(size);
    }
    sizes
}

/// All practices of the shipped file, sorted by practice code.
pub fn generate() -> Vec<SyntheticPractice> {
    let mut rng = Rng(0xCA11_B0A5_2026_0006);
    let mut practices = Vec::new();
    let mut sub_icb_codes = HashSet::new();
    let mut next_pcn = 10_000u64;
    let mut next_y_practice = 0u64;
    let mut ons_icb = 7;
    let mut ons_sub_icb = 0;
    for region in &REGIONS {
        // A81, B81, A82, B82, ...: the region's letters take turns.
        let mut prefixes = (81..=99).flat_map(|area| {
            region
                .letters
                .iter()
                .map(move |letter| format!("{}{area}", *letter as char))
        });
        for (icb_index, icb) in ICBS.iter().filter(|i| i.region == region.code).enumerate() {
            ons_icb += 1;
            let simulator_first =
                (region.code == REGIONS[0].code && icb_index == 0).then_some(SIMULATOR_PRACTICES);
            let icb_name = format!("NHS {} Integrated Care Board", icb.area);
            for size in split(&mut rng, icb.practices, icb.sub_icbs, simulator_first) {
                ons_sub_icb += 1;
                let prefix = prefixes.next().unwrap_or_default();
                let simulator = prefix == "A81";
                let sub_icb_code = sub_icb_code(&mut rng, &mut sub_icb_codes);
                let sub_icb_name = format!("NHS {} ICB - {sub_icb_code}", icb.area);
                let postcode_area = rng.pick(region.postcode_areas);
                let mut serial = 0u64;
                let mut pcn_left = 0u64;
                let mut pcn = (String::new(), String::new());
                for i in 0..size {
                    if pcn_left == 0 {
                        pcn_left = rng.range(2, 8) + u64::from(rng.chance(250));
                        // Do not leave a PCN of one practice at the end.
                        if (size - i) as u64 <= pcn_left + 1 {
                            pcn_left = (size - i) as u64;
                        }
                        next_pcn += rng.range(1, 40);
                        pcn = (format!("U{next_pcn:05}"), pcn_name(&mut rng));
                    }
                    pcn_left -= 1;
                    let newer = !simulator && rng.chance(40);
                    let code = if newer {
                        next_y_practice += rng.range(1, 9);
                        format!("Y{next_y_practice:05}")
                    } else {
                        serial += 1;
                        if !simulator && rng.chance(80) {
                            serial += rng.range(1, 3);
                        }
                        format!("{prefix}{serial:03}")
                    };
                    let postcode = format!(
                        "{postcode_area}{} {}{}{}",
                        rng.range(1, 30),
                        rng.range(1, 9),
                        rng.pick(POSTCODE_LETTERS) as char,
                        rng.pick(POSTCODE_LETTERS) as char
                    );
                    let open_date = if newer {
                        date(2005, 1, 1) + chrono::Days::new(rng.range(0, 18 * 365))
                    } else if rng.chance(600) {
                        date(1974, 4, 1)
                    } else {
                        date(1974, 4, 2) + chrono::Days::new(rng.range(0, 48 * 365))
                    };
                    let close_date = (!simulator && rng.chance(20)).then(|| {
                        let close = date(2015, 1, 1) + chrono::Days::new(rng.range(0, 10 * 365));
                        close.max(open_date + chrono::Days::new(365))
                    });
                    let supplier = match rng.range(0, 99) {
                        0..=54 => "EMIS",
                        55..=97 => "TPP",
                        _ => "VISION",
                    };
                    practices.push(SyntheticPractice {
                        practice: Practice {
                            code,
                            name: practice_name(&mut rng),
                            postcode,
                            pcn_code: pcn.0.clone(),
                            pcn_name: pcn.1.clone(),
                            sub_icb_code: sub_icb_code.clone(),
                            sub_icb_name: sub_icb_name.clone(),
                            icb_code: icb.code.to_string(),
                            icb_name: icb_name.clone(),
                            region_code: region.code.to_string(),
                            region_name: region.name.to_string(),
                            open_date: Some(open_date),
                            close_date,
                        },
                        ons_sub_icb_code: format!("E38000{ons_sub_icb:03}"),
                        ons_icb_code: format!("E54000{ons_icb:03}"),
                        ons_region_code: region.ons.to_string(),
                        supplier,
                    });
                }
            }
        }
    }
    practices.sort_by(|a, b| a.practice.code.cmp(&b.practice.code));
    practices
}

/// Writes practices in callpulse's format: the columns of NHS Digital's
/// mapping file, then OPEN_DATE and CLOSE_DATE.
pub fn write_csv(out: impl Write, practices: &[SyntheticPractice]) -> csv::Result<()> {
    let mut writer = csv::WriterBuilder::new()
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(out);
    writer.write_record(NHS_DIGITAL_COLUMNS.iter().chain(DATE_COLUMNS.iter()))?;
    let day = |d: Option<NaiveDate>| {
        d.map(|d| d.format("%Y-%m-%d").to_string())
            .unwrap_or_default()
    };
    for s in practices {
        let p = &s.practice;
        writer.write_record([
            p.code.as_str(),
            &p.name,
            &p.postcode,
            &p.pcn_code,
            &p.pcn_name,
            &s.ons_sub_icb_code,
            &p.sub_icb_code,
            &p.sub_icb_name,
            &s.ons_icb_code,
            &p.icb_code,
            &p.icb_name,
            &s.ons_region_code,
            &p.region_code,
            &p.region_name,
            s.supplier,
            &day(p.open_date),
            &day(p.close_date),
        ])?;
    }
    writer.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::organisations::{parse, Format, LevelCounts};

    fn generated_csv() -> Vec<u8> {
        let mut out = Vec::new();
        write_csv(&mut out, &generate()).unwrap();
        out
    }

    #[test]
    fn the_shipped_file_is_what_the_generator_writes() {
        let shipped = include_bytes!("../../../../data/organisations.csv");
        assert!(
            generated_csv() == shipped.as_slice(),
            "data/organisations.csv is out of date: run `callpulse orgs generate --out data/organisations.csv`"
        );
    }

    #[test]
    fn the_generated_file_loads_cleanly_with_realistic_counts() {
        let parsed = parse(generated_csv().as_slice()).unwrap();
        assert_eq!(parsed.format, Format::Callpulse);
        assert_eq!(parsed.errors, vec![]);
        let counts = LevelCounts::of(&parsed.practices);
        assert_eq!(counts.practices, 6_340);
        assert_eq!(counts.regions, 7);
        assert_eq!(counts.icbs, 42);
        assert_eq!(counts.sub_icbs, 106);
        assert!((1_150..=1_350).contains(&counts.pcns), "{counts}");
        assert!((60..=200).contains(&counts.closed), "{counts}");
        // Every practice is in a PCN, and a PCN lies within one sub-ICB location.
        let mut pcn_parent = std::collections::HashMap::new();
        for p in &parsed.practices {
            assert!(!p.pcn_code.is_empty());
            let parent = pcn_parent
                .entry(p.pcn_code.clone())
                .or_insert(p.sub_icb_code.clone());
            assert_eq!(*parent, p.sub_icb_code, "{}", p.pcn_code);
        }
    }

    #[test]
    fn the_simulators_practices_come_first_and_are_open() {
        let practices = generate();
        for (i, s) in practices.iter().take(SIMULATOR_PRACTICES).enumerate() {
            let p = &s.practice;
            assert_eq!(p.code, format!("A{:05}", 81_001 + i));
            assert_eq!(p.close_date, None, "{}", p.code);
            assert_eq!(
                (p.icb_code.as_str(), p.region_code.as_str()),
                ("QHM", "Y63")
            );
        }
    }
}
