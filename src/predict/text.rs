//! `seqlab predict` on a text classifier (`source = "text"` or the IMDB
//! preset): the cell's `text.toml` and `vocab.txt` encode new texts exactly
//! as its training texts were encoded; the model gives each text a
//! probability per class (a sigmoid for one output, a softmax for several).
use crate::config::{DataSpec, LayerSpec};
use crate::data::text_state::{Encoder, TextState, TEXT_TOML, VOCAB_TXT};
use crate::model::Model;
use crate::results::{weights, Trained};
use anyhow::{bail, Context, Result};
use rayon::prelude::*;
use std::io::Read as _;
use std::path::Path;
use tch::{Device, Kind, Tensor};

/// Largest vocabulary file or input file read (untrusted input).
const MAX_FILE_BYTES: u64 = 2 << 30;
/// Texts per forward pass.
const BATCH: usize = 256;

/// A trained text classifier, ready to label texts.
pub struct Classifier {
    pub trained: Trained,
    pub model: Model,
    pub encoder: Encoder,
    pub device: Device,
}

impl Classifier {
    pub fn classes(&self) -> &[String] {
        &self.encoder.state.classes
    }
}

/// Whether the cell at `dir` holds a text classifier (else a table model).
pub fn is_text_cell(trained: &Trained) -> bool {
    matches!(trained.config.data, DataSpec::Text(_) | DataSpec::Imdb(_))
}

/// Opens the text cell at `dir`, checks its saved encoder against its model
/// and loads its weights on `device` (default: the cell's `train.device`).
pub fn load(trained: Trained, device: Option<&str>) -> Result<Classifier> {
    let dir = trained.dir.clone();
    let state_path = dir.join(TEXT_TOML);
    if !state_path.exists() {
        bail!(
            "{}: no {TEXT_TOML} (the cell ran before seqlab kept its vocabulary); rerun it with `seqlab run <file> --force --only {}`",
            dir.display(),
            trained.summary_key()
        );
    }
    let state: TextState = toml::from_str(&read_capped(&state_path)?).with_context(|| {
        format!(
            "{}: not a text encoding this seqlab reads",
            state_path.display()
        )
    })?;
    let vocab_path = dir.join(VOCAB_TXT);
    let vocab = read_capped(&vocab_path)?;
    let encoder = Encoder::parse(state, &vocab, &vocab_path.display().to_string())?;
    if let Some(input_dim) = trained.config.layers.iter().find_map(|l| match l {
        LayerSpec::Embedding { input_dim, .. } => Some(*input_dim),
        _ => None,
    }) {
        if encoder.size() > input_dim {
            bail!(
                "{}: {} token ids but the model's embedding takes {input_dim} (layers: input_dim); the vocabulary does not belong to this model — rerun the cell",
                vocab_path.display(),
                encoder.size()
            );
        }
    }
    let inferred =
        crate::model::infer(&trained.config).map_err(|e| anyhow::anyhow!(e.join("; ")))?;
    crate::model::shape::check_classes(
        &inferred,
        trained.config.train.loss,
        &encoder.state.classes,
    )
    .map_err(|e| anyhow::anyhow!("{}: {e}", state_path.display()))?;
    let device = crate::model::device(device.unwrap_or(&trained.config.train.device))?;
    let model = Model::build(&trained.config, device, &[])?;
    weights::load_into(&model.vs, &trained.weights()?)?;
    Ok(Classifier {
        trained,
        model,
        encoder,
        device,
    })
}

/// Each text's probability per class, in class order (rows sum to 1).
pub fn classify(c: &Classifier, texts: &[String]) -> Vec<Vec<f64>> {
    let _guard = tch::no_grad_guard();
    let maxlen = c.encoder.state.maxlen;
    let encoder = &c.encoder;
    let mut out = Vec::with_capacity(texts.len());
    for chunk in texts.chunks(BATCH) {
        let ids: Vec<i32> = chunk
            .par_iter()
            .flat_map_iter(|t| encoder.encode(t))
            .collect();
        let x = Tensor::from_slice(&ids)
            .reshape([chunk.len() as i64, maxlen as i64])
            .to_kind(Kind::Int64)
            .to_device(c.device);
        let logits = c.model.forward_logits(&x, false).to_kind(Kind::Double);
        let probs = if logits.size().last() == Some(&1) {
            let p = logits.reshape([-1, 1]).sigmoid();
            Tensor::cat(&[p.ones_like() - &p, p], 1)
        } else {
            logits.softmax(-1, Kind::Double)
        };
        let width = probs.size()[1] as usize;
        let flat: Vec<f64> =
            Vec::try_from(probs.to_device(Device::Cpu).reshape([-1])).unwrap_or_default();
        out.extend(flat.chunks(width).map(<[f64]>::to_vec));
    }
    out
}

/// The predicted class of each row of probabilities (the first on a tie).
pub fn labels(probs: &[Vec<f64>]) -> Vec<usize> {
    probs
        .iter()
        .map(|p| {
            p.iter()
                .enumerate()
                .fold((0, f64::NEG_INFINITY), |best, (i, &v)| {
                    if v > best.1 {
                        (i, v)
                    } else {
                        best
                    }
                })
                .0
        })
        .collect()
}

/// `index,label,p_<class>…,text`: one row per text.
pub fn csv(classes: &[String], texts: &[String], probs: &[Vec<f64>]) -> Result<String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut header = vec!["index".to_string(), "label".to_string()];
    header.extend(classes.iter().map(|c| format!("p_{c}")));
    header.push("text".into());
    w.write_record(&header)?;
    for (i, ((text, p), label)) in texts.iter().zip(probs).zip(labels(probs)).enumerate() {
        let mut row = vec![i.to_string(), classes[label].clone()];
        row.extend(p.iter().map(|v| format!("{v:.6}")));
        row.push(text.clone());
        w.write_record(&row)?;
    }
    Ok(String::from_utf8(w.into_inner()?)?)
}

/// The texts of `path`: a CSV / TSV column (`column`), or one per line of
/// any other file (empty lines skipped). Invalid UTF-8 is decoded lossily
/// and counted on standard error.
pub fn read_texts(path: &Path, column: &str) -> Result<Vec<String>> {
    let shown = path.display();
    let bytes = read_bytes_capped(path)?;
    let text = match String::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            let t = String::from_utf8_lossy(e.as_bytes()).into_owned();
            eprintln!("seqlab: {shown}: not valid UTF-8; invalid bytes read as U+FFFD");
            t
        }
    };
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    let delimiter = match ext {
        "csv" => b',',
        "tsv" => b'\t',
        _ => {
            return Ok(text
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(str::to_string)
                .collect())
        }
    };
    let mut r = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .from_reader(text.trim_start_matches('\u{feff}').as_bytes());
    let header = r
        .headers()
        .with_context(|| format!("{shown}: cannot read the header line"))?
        .clone();
    let Some(k) = header.iter().position(|h| h == column) else {
        let names: Vec<String> = header.iter().map(str::to_string).collect();
        let hint = crate::config::suggest::closest(column, &names)
            .map(|c| format!("; did you mean {c:?}?"))
            .unwrap_or_default();
        bail!(
            "{shown}: no column {column:?} in the header ({}){hint}; name the text column with --column",
            names.join(", ")
        );
    };
    let mut texts = Vec::new();
    for (i, record) in r.records().enumerate() {
        let record = record.with_context(|| format!("{shown}: line {}", i + 2))?;
        let Some(t) = record.get(k) else {
            bail!("{shown}: line {}: no field {} ({column}); every row needs as many fields as the header", i + 2, k + 1);
        };
        texts.push(t.to_string());
    }
    Ok(texts)
}

fn read_bytes_capped(path: &Path) -> Result<Vec<u8>> {
    let f = std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut bytes = Vec::new();
    f.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("reading {}", path.display()))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        bail!(
            "{}: larger than {} GiB; split it into smaller files",
            path.display(),
            MAX_FILE_BYTES >> 30
        );
    }
    Ok(bytes)
}

fn read_capped(path: &Path) -> Result<String> {
    let bytes = read_bytes_capped(path)?;
    String::from_utf8(bytes).with_context(|| {
        format!(
            "{}: not UTF-8; the file is damaged — rerun the cell",
            path.display()
        )
    })
}

/// What a text evaluation wrote.
pub struct TextEvaluation {
    pub dir: std::path::PathBuf,
    pub documents: usize,
    pub metrics: Vec<(String, f64)>,
}

/// The classifier on every labelled document of `data` (a folder with one
/// subfolder per class, its `.tar.gz`, or a CSV / TSV / JSON-lines file with
/// the cell's text and label columns): cross-entropy and accuracy, named
/// `all_loss` and `all_accuracy`, and the confusion matrix, written to
/// `<cell>/eval/<name>/` (summary.toml, confusion.csv, confusion.png).
pub fn evaluate(c: &Classifier, data: &Path, name: &str) -> Result<TextEvaluation> {
    let (text_column, label_column) = match &c.trained.config.data {
        DataSpec::Text(t) => (t.text_column.clone(), t.label_column.clone()),
        _ => (String::new(), String::new()),
    };
    let columns = crate::data::text_read::Columns {
        text: &text_column,
        label: &label_column,
    };
    let collection = crate::data::text_read::read_collection(data, columns)?;
    if collection.lossy > 0 {
        eprintln!(
            "seqlab: {}: {} document(s) were not valid UTF-8 and were decoded lossily",
            data.display(),
            collection.lossy
        );
    }
    let classes = c.classes();
    let mut truth = Vec::with_capacity(collection.docs.len());
    for d in &collection.docs {
        let Some(k) = classes.iter().position(|n| *n == d.label) else {
            bail!(
                "{}: label `{}` is not a class of the cell ({}); fix the label or evaluate on a file of these classes",
                data.display(),
                d.label,
                classes.join(", ")
            );
        };
        truth.push(k);
    }
    if truth.is_empty() {
        bail!("{}: no documents", data.display());
    }
    let texts: Vec<String> = collection.docs.into_iter().map(|d| d.text).collect();
    let probs = classify(c, &texts);
    let predicted = labels(&probs);
    let mut counts = vec![vec![0u64; classes.len()]; classes.len()];
    let mut loss = 0.0;
    for ((p, &t), &k) in probs.iter().zip(&truth).zip(&predicted) {
        counts[t][k] += 1;
        loss -= p[t].max(1e-7).ln();
    }
    let n = truth.len();
    let right: u64 = (0..classes.len()).map(|k| counts[k][k]).sum();
    let metrics = vec![
        ("all_loss".to_string(), loss / n as f64),
        ("all_accuracy".to_string(), right as f64 / n as f64),
    ];
    let staging = crate::results::store::Staging::new(&c.trained.dir, crate::results::EVAL, name)?;
    let mut summary = toml::Table::new();
    summary.insert("cell".into(), c.trained.summary_key().into());
    summary.insert("content_id".into(), c.trained.content_id.clone().into());
    summary.insert("data".into(), data.display().to_string().into());
    summary.insert("split".into(), "all".into());
    summary.insert("documents".into(), (n as i64).into());
    let text = format!(
        "{}\n{}",
        toml::to_string(&summary)?,
        super::forecast::metrics_toml("all", &metrics)
    );
    let written = staging
        .write(
            "confusion.csv",
            crate::train::confusion::confusion_csv(classes, &counts).as_bytes(),
        )
        .map_err(anyhow::Error::from)
        .and_then(|_| {
            crate::plot::confusion::draw(
                classes,
                &counts,
                &format!("{} on {}", c.trained.summary_key(), data.display()),
                &staging.dir.join("confusion.png"),
            )
        })
        .and_then(|_| Ok(staging.write("summary.toml", text.as_bytes())?));
    if let Err(e) = written {
        staging.discard();
        return Err(e);
    }
    Ok(TextEvaluation {
        dir: staging.commit()?,
        documents: n,
        metrics,
    })
}
