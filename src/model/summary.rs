//! `seqlab describe`: a Keras-style summary table of a model.
use super::shape::Inferred;

/// Thousands separators, as Keras prints parameter counts.
pub fn thousands(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// One row per layer (name, type, output shape, parameters), then totals.
pub fn table(inferred: &Inferred, types: &[&str]) -> String {
    let mut rows: Vec<[String; 3]> = vec![[
        "Layer (type)".into(),
        "Output shape".into(),
        "Param #".into(),
    ]];
    rows.push(["input".into(), inferred.input.to_string(), "0".into()]);
    let order: Vec<usize> = if inferred.wiring.order.is_empty() {
        vec![0]
    } else {
        inferred.wiring.order.clone()
    };
    for i in order {
        let l = &inferred.layers[i];
        let ty = types.get(i).copied().unwrap_or("naive_last");
        rows.push([
            format!("{} ({ty})", l.name),
            l.output.to_string(),
            thousands(l.params),
        ]);
    }
    let w0 = rows.iter().map(|r| r[0].len()).max().unwrap_or(0) + 2;
    let w1 = rows.iter().map(|r| r[1].len()).max().unwrap_or(0) + 2;
    let w2 = rows.iter().map(|r| r[2].len()).max().unwrap_or(0);
    let rule = "─".repeat(w0 + w1 + w2);
    let mut out = String::new();
    for (k, r) in rows.iter().enumerate() {
        out.push_str(&format!("{:<w0$}{:<w1$}{:>w2$}\n", r[0], r[1], r[2]));
        if k == 0 {
            out.push_str(&rule);
            out.push('\n');
        }
    }
    out.push_str(&rule);
    out.push('\n');
    out.push_str(&format!(
        "Total params: {}\n",
        thousands(inferred.total_params)
    ));
    out.push_str(&format!(
        "Trainable params: {}\n",
        thousands(inferred.total_params)
    ));
    out.push_str("Non-trainable params: 0\n");
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn thousands_separators() {
        assert_eq!(super::thousands(1280000), "1,280,000");
        assert_eq!(super::thousands(4608), "4,608");
        assert_eq!(super::thousands(33), "33");
    }
}
