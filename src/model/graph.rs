//! The layer graph: which layer feeds which. A plain `[[layers]]` list is a
//! chain; `name` and `inputs = ["name", …]` (with `"input"` for the model
//! input) make branches, joined by `concatenate` or `add`.
use crate::config::LayerSpec;

/// Where a layer's input comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Src {
    Input,
    Layer(usize),
}

/// The resolved wiring of a layer list.
#[derive(Debug, Clone)]
pub struct Wiring {
    /// Each layer's name (its `name`, or `<type>_<index>`).
    pub names: Vec<String>,
    pub sources: Vec<Vec<Src>>,
    /// Layers in an order where every layer comes after its inputs.
    pub order: Vec<usize>,
    /// The layer whose output is the model's.
    pub output: usize,
}

/// `layers[2] (gru)`: how errors name a layer.
pub fn label(i: usize, layer: &LayerSpec) -> String {
    format!("layers[{i}] ({})", layer.type_name())
}

/// Resolves names, checks for unknown inputs, cycles and unused outputs.
pub fn wire(layers: &[LayerSpec], output: &str) -> Result<Wiring, Vec<String>> {
    let mut errors = Vec::new();
    let names: Vec<String> = layers
        .iter()
        .enumerate()
        .map(|(i, l)| {
            l.wiring()
                .0
                .map(str::to_string)
                .unwrap_or_else(|| format!("{}_{i}", l.type_name()))
        })
        .collect();
    for (i, n) in names.iter().enumerate() {
        if n == "input" {
            errors.push(format!(
                "{}: the name `input` is reserved for the model input; rename the layer",
                label(i, &layers[i])
            ));
        }
        if let Some(j) = names[..i].iter().position(|m| m == n) {
            errors.push(format!(
                "{}: name `{n}` is already used by {}; names must be unique",
                label(i, &layers[i]),
                label(j, &layers[j])
            ));
        }
    }
    let mut sources = Vec::new();
    for (i, layer) in layers.iter().enumerate() {
        let srcs = match layer.wiring().1 {
            None if i == 0 => vec![Src::Input],
            None => vec![Src::Layer(i - 1)],
            Some(list) => list
                .iter()
                .filter_map(|name| {
                    if name == "input" {
                        Some(Src::Input)
                    } else if let Some(j) = names.iter().position(|n| n == name) {
                        Some(Src::Layer(j))
                    } else {
                        errors.push(format!(
                            "{}: inputs names `{name}`, which is no layer; known names: input, {}",
                            label(i, layer),
                            names.join(", ")
                        ));
                        None
                    }
                })
                .collect(),
        };
        if layer.wiring().1.is_some_and(|l| l.is_empty()) {
            errors.push(format!(
                "{}: `inputs` is empty; name at least one layer or \"input\"",
                label(i, layer)
            ));
        }
        sources.push(srcs);
    }
    let output = if output.is_empty() {
        layers.len().saturating_sub(1)
    } else {
        match names.iter().position(|n| n == output) {
            Some(j) => j,
            None => {
                errors.push(format!(
                    "model.output: `{output}` is no layer's name; known names: {}",
                    names.join(", ")
                ));
                layers.len().saturating_sub(1)
            }
        }
    };
    if !errors.is_empty() {
        return Err(errors);
    }
    // Kahn's algorithm, lowest index first so a chain keeps its file order.
    let mut indegree: Vec<usize> = sources
        .iter()
        .map(|s| s.iter().filter(|x| matches!(x, Src::Layer(_))).count())
        .collect();
    let mut order = Vec::new();
    let mut done = vec![false; layers.len()];
    while let Some(next) = (0..layers.len()).find(|&i| !done[i] && indegree[i] == 0) {
        done[next] = true;
        order.push(next);
        for (j, srcs) in sources.iter().enumerate() {
            indegree[j] -= srcs.iter().filter(|s| **s == Src::Layer(next)).count();
        }
    }
    if order.len() < layers.len() {
        let stuck: Vec<String> = (0..layers.len())
            .filter(|i| !done[*i])
            .map(|i| label(i, &layers[i]))
            .collect();
        return Err(vec![format!(
            "layers: the graph has a cycle through {}; a layer cannot feed its own inputs",
            stuck.join(", ")
        )]);
    }
    let used = |i: usize| sources.iter().any(|s| s.contains(&Src::Layer(i)));
    for (i, layer) in layers.iter().enumerate() {
        if i != output && !used(i) {
            errors.push(format!(
                "{}: its output is never used; feed it into a later layer's `inputs`, or remove it",
                label(i, layer)
            ));
        }
    }
    if errors.is_empty() {
        Ok(Wiring {
            names,
            sources,
            order,
            output,
        })
    } else {
        Err(errors)
    }
}
