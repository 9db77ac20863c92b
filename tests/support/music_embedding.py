"""A tiny, randomly initialised audio transformer saved as a lab's local model folder would be
(``config.json``, ``preprocessor_config.json``, weights), for the ``--embedding`` tests.

The architecture is HuBERT's or wav2vec 2.0's (as ``hubert-large-ls960-ft``: with a CTC
head), shrunk to 32 hidden values and two layers; no weights ship and nothing is downloaded.
"""

from __future__ import annotations

from pathlib import Path


def write_tiny_audio_model(folder: Path, kind: str = "hubert", ctc: bool = True, seed: int = 0) -> Path:
    """Save a tiny random ``kind`` ("hubert" or "wav2vec2") model and its feature extractor."""
    import torch
    import transformers as tf

    settings = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                    conv_dim=(16, 16, 16, 16), conv_stride=(5, 4, 4, 2), conv_kernel=(10, 4, 4, 2),
                    num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4, vocab_size=32,
                    feat_extract_norm="layer", do_stable_layer_norm=True)
    config = (tf.HubertConfig if kind == "hubert" else tf.Wav2Vec2Config)(**settings)
    head = {"hubert": (tf.HubertModel, tf.HubertForCTC), "wav2vec2": (tf.Wav2Vec2Model, tf.Wav2Vec2ForCTC)}[kind]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = head[1 if ctc else 0](config)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    tf.Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=16000, padding_value=0.0, do_normalize=True,
                                return_attention_mask=True).save_pretrained(folder)
    return folder
