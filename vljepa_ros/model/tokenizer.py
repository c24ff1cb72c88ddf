"""Fixed-length tokenization for queries (predictor) and texts (Y-encoder, decoder).

The paper preset loads the real tokenizers (Llama 3 for queries, Gemma for texts) from local Hugging
Face directories. The small presets are trained from scratch, so they use a byte-level BPE we train
over the training texts with the `tokenizers` library (GPT-2 style: ByteLevel pre-tokenizer and
decoder, the 256-byte initial alphabet), so any UTF-8 text maps to known tokens and [UNK] never
appears. Models saved before that carry a word-level tokenizer (build_word_tokenizer, [UNK] for any
word outside its corpus); they keep loading unchanged because a model directory holds its own
tokenizers. All are wrapped as transformers PreTrainedTokenizerFast and saved with the model, so
inference tokenizes exactly as training did.
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import AutoTokenizer, PreTrainedTokenizerFast

PAD, UNK, BOS, EOS = "[PAD]", "[UNK]", "[BOS]", "[EOS]"
SPECIAL_TOKENS = (PAD, UNK, BOS, EOS)  # ids 0..3, matching the presets' pad/bos/eos ids

_WORD_PATTERN = re.compile(r"\w+|[^\w\s]")
# Every byte value is a base token, so nothing is ever out of vocabulary.
BYTE_ALPHABET_SIZE = 256


def build_byte_bpe_tokenizer(corpus: Iterable[str], vocab_size: int) -> PreTrainedTokenizerFast:
    """Byte-level BPE trained over `corpus` + [PAD]/[UNK]/[BOS]/[EOS] (ids 0..3); lower-cases its input.

    The vocabulary is the 256 byte symbols plus merges learnt from `corpus`, up to `vocab_size` entries
    (fewer when the corpus runs out of pairs to merge), so unseen words split into known pieces and the
    [UNK] id is never produced (it keeps id 1 only so every small model shares one special-token layout).
    Texts are lower-cased because the training corpora are; decode() gives back the lower-cased text.
    """
    tokenizer = Tokenizer(models.BPE())
    tokenizer.normalizer = normalizers.Lowercase()
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=max(int(vocab_size), len(SPECIAL_TOKENS) + BYTE_ALPHABET_SIZE),
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    # Sorted and de-duplicated: the learnt merges depend only on the set of texts, not their order.
    tokenizer.train_from_iterator(sorted(set(corpus)), trainer)
    bos_id = tokenizer.token_to_id(BOS)
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A", pair=f"{BOS} $A $B", special_tokens=[(BOS, bos_id)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, pad_token=PAD, unk_token=UNK, bos_token=BOS, eos_token=EOS
    )


def build_word_tokenizer(corpus: Iterable[str], min_count: int = 1) -> PreTrainedTokenizerFast:
    """Word-level tokenizer over `corpus` (lower-cased words and punctuation) + [PAD]/[UNK]/[BOS]/[EOS].

    Every encoding starts with [BOS], as Gemma's and Llama's tokenizers start with <bos>, so even an
    empty string has one real token to pool over.
    """
    counts: dict[str, int] = {}
    for text in corpus:
        for word in _WORD_PATTERN.findall(text.lower()):
            counts[word] = counts.get(word, 0) + 1
    words = sorted(word for word, count in counts.items() if count >= min_count)
    vocab = {token: index for index, token in enumerate(SPECIAL_TOKENS)}
    for word in words:
        vocab.setdefault(word, len(vocab))

    tokenizer = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK))
    tokenizer.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Whitespace()])
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A", pair=f"{BOS} $A $B", special_tokens=[(BOS, vocab[BOS])]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, pad_token=PAD, unk_token=UNK, bos_token=BOS, eos_token=EOS
    )


def load_hf_tokenizer(directory: str | Path) -> PreTrainedTokenizerFast:
    """A tokenizer from a local Hugging Face directory; gives it a pad token if it has none (Llama 3)."""
    tokenizer = AutoTokenizer.from_pretrained(str(directory), local_files_only=True)
    if tokenizer.pad_token is None:
        # Llama 3 ships no pad token; it reserves <|finetune_right_pad_id|>. Pad positions are masked out
        # everywhere, so which id pads does not change any output.
        vocab = tokenizer.get_vocab()
        tokenizer.pad_token = "<|finetune_right_pad_id|>" if "<|finetune_right_pad_id|>" in vocab else tokenizer.eos_token
    return tokenizer


class FixedLengthTokenizer:
    """Tokenize a batch to exactly `max_length` tokens (right padding, truncation) as LongTensors."""

    def __init__(self, tokenizer: PreTrainedTokenizerFast, max_length: int) -> None:
        if tokenizer.pad_token_id is None:
            raise ValueError("tokenizer has no pad token")
        self.tokenizer = tokenizer
        self.max_length = int(max_length)

    def __call__(self, texts: list[str] | str) -> tuple[torch.Tensor, torch.Tensor]:
        if isinstance(texts, str):
            texts = [texts]
        if not all(isinstance(text, str) for text in texts):
            raise TypeError("texts must be strings")
        encoded = self.tokenizer(
            list(texts),
            padding="max_length",
            truncation=True,
            max_length=self.max_length,
            return_tensors="pt",
        )
        return encoded["input_ids"].long(), encoded["attention_mask"].long()

    @property
    def vocab_size(self) -> int:
        return len(self.tokenizer)

    @property
    def pad_token_id(self) -> int:
        return int(self.tokenizer.pad_token_id)

    def save(self, directory: str | Path) -> None:
        self.tokenizer.save_pretrained(str(directory))

    @classmethod
    def load(cls, directory: str | Path, max_length: int) -> "FixedLengthTokenizer":
        return cls(load_hf_tokenizer(directory), max_length)
