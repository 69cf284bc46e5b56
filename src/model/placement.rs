//! Where a cell trains when its `train.device` is `auto`: on the GPU where
//! there is one, except a model with recurrent dropout in a GRU or LSTM.
//!
//! libtorch's cuDNN recurrent kernel cannot mask the hidden state, so such a
//! layer runs on the GPU one time step at a time, dozens of tiny kernels per
//! step; seqlab's CPU kernel is several times faster (measured on an H200:
//! a Jena GRU with recurrent dropout takes 123 ms a train step on the GPU,
//! 8 ms on two CPU cores; `benches/cuda.sh`, `make bench`). An explicit
//! `cuda` is obeyed.

use crate::config::Config;
use crate::config::{CellKind, LayerSpec, Recurrent};
use tch::Device;

/// The device a cell trains on, and why `auto` chose the CPU beside a GPU.
#[derive(Debug, Clone, PartialEq)]
pub struct Placement {
    pub device: Device,
    pub why_cpu: Option<String>,
}

/// Resolves the cell's `train.device`.
pub fn place(config: &Config) -> anyhow::Result<Placement> {
    let device = super::device(&config.train.device)?;
    if config.train.device != "auto" {
        return Ok(Placement {
            device,
            why_cpu: None,
        });
    }
    Ok(choose(&config.layers, device))
}

/// `auto`'s choice, given the device `auto` resolved to (a GPU where there
/// is one).
pub fn choose(layers: &[LayerSpec], found: Device) -> Placement {
    let masked = layers.iter().find_map(|l| {
        let (kind, r) = match l {
            LayerSpec::Bidirectional { layer, .. } => layer.parts(),
            other => other.recurrent()?,
        };
        masked_on_gpu(kind, r).then(|| l.type_name())
    });
    match (found, masked) {
        (Device::Cuda(_), Some(layer)) => Placement {
            device: Device::Cpu,
            why_cpu: Some(format!(
                "a {layer} layer with recurrent_dropout has no fused CUDA kernel; seqlab's CPU kernel is faster (set train.device = \"cuda\" to insist)"
            )),
        },
        (device, _) => Placement {
            device,
            why_cpu: None,
        },
    }
}

/// A recurrent layer that would run step by step on a GPU while the CPU
/// kernel takes it whole.
fn masked_on_gpu(kind: CellKind, r: &Recurrent) -> bool {
    matches!(kind, CellKind::Gru | CellKind::Lstm)
        && r.recurrent_dropout > 0.0
        && super::kernel::fastmath::supports(r.activation, r.recurrent_activation)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layers(toml: &str) -> Vec<LayerSpec> {
        #[derive(serde::Deserialize)]
        struct L {
            layers: Vec<LayerSpec>,
        }
        toml::from_str::<L>(toml).unwrap().layers
    }

    #[test]
    fn recurrent_dropout_stays_on_the_cpu_beside_a_gpu() {
        let gru = layers(
            "[[layers]]\ntype = \"gru\"\nunits = 32\nrecurrent_dropout = 0.5\n[[layers]]\ntype = \"dense\"\nunits = 1\n",
        );
        let p = choose(&gru, Device::Cuda(0));
        assert_eq!(p.device, Device::Cpu);
        assert!(p
            .why_cpu
            .unwrap()
            .contains("gru layer with recurrent_dropout"));
        let bi = layers(
            "[[layers]]\ntype = \"bidirectional\"\nlayer = { type = \"lstm\", units = 8, recurrent_dropout = 0.2 }\n",
        );
        assert_eq!(choose(&bi, Device::Cuda(1)).device, Device::Cpu);
        // no GPU: the CPU, with nothing to explain
        assert_eq!(
            choose(&gru, Device::Cpu),
            Placement {
                device: Device::Cpu,
                why_cpu: None
            }
        );
    }

    #[test]
    fn fused_models_go_to_the_gpu() {
        for toml in [
            // input dropout alone is a mask on the input, cuDNN runs the rest
            "[[layers]]\ntype = \"gru\"\nunits = 32\ndropout = 0.2\n",
            "[[layers]]\ntype = \"lstm\"\nunits = 32\n",
            // a SimpleRNN has no CPU kernel: nothing to gain on the CPU
            "[[layers]]\ntype = \"simple_rnn\"\nunits = 4\nrecurrent_dropout = 0.3\n",
            "[[layers]]\ntype = \"dense\"\nunits = 1\n",
        ] {
            assert_eq!(
                choose(&layers(toml), Device::Cuda(0)).device,
                Device::Cuda(0),
                "{toml}"
            );
        }
    }
}
