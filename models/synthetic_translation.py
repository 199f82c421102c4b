"""A made-up language pair to learn translation on, generated on the fly: nothing to download.

    source:  the big dogs chase a cat near some old farmers quickly                     (12 words)
    target:  les dok ta granu un mek des farm ta veku pres con presa kazen             (15 words)

The rules a model has to find:
  word order    subject verb object [place] [manner]  ->  subject [place] object [manner] verb
                (verb last), and "near X" becomes "X pres": a postposition
  noun phrase   determiner adjectives noun  ->  determiner noun adjectives (adjectives after the noun)
  one to two    a plural noun becomes the noun and the plural word "ta" (dogs -> dok ta), and
                "quickly" becomes "con prisa"; every other word maps to one word
  agreement     the target's determiner and adjectives take the number of their noun (the -> le / les,
                big -> gran / granu), which in the source only the noun shows, a few words later; the
                verb agrees with its subject in both languages (chases -> kaza, chase -> kazen)

Sentences have 3 to 12 source words. `TranslationTask.sample` draws (source, target) word lists;
`held_out(n)` sets aside n distinct source sentences that `sample` then never draws, so a test on them
measures translation of sentences never seen in training.
"""
import numpy as np

PAD, BOS, EOS = "<pad>", "<bos>", "<eos>"

# source singular, source plural -> target word
NOUNS = {("cat", "cats"): "mek", ("dog", "dogs"): "dok", ("bird", "birds"): "pip",
         ("child", "children"): "kin", ("farmer", "farmers"): "farm", ("fox", "foxes"): "vos"}
PLURAL_MARK = "ta"
# source -> target singular, target plural
ADJECTIVES = {"big": ("gran", "granu"), "small": ("pik", "piku"), "red": ("rud", "rudu"),
              "old": ("vek", "veku"), "happy": ("fel", "felu")}
# source determiner -> target, per number (None: the determiner does not exist for that number)
DETERMINERS = {"the": ("le", "les"), "a": ("un", None), "some": (None, "des")}
# source singular subject, plural subject -> target singular, plural
VERBS = {("sees", "see"): ("vida", "viden"), ("chases", "chase"): ("kaza", "kazen"),
         ("likes", "like"): ("ama", "amen"), ("finds", "find"): ("trova", "troven")}
PREPOSITIONS = {"near": "pres", "behind": "dor"}                  # become postpositions
ADVERBS = {"quickly": ("con", "prisa"), "often": ("sovan",), "today": ("oji",)}
MAX_WORDS = 12


class Vocabulary:
    """Words <-> ids; ids 0, 1, 2 are <pad>, <bos>, <eos>."""

    def __init__(self, words):
        self.words = [PAD, BOS, EOS] + sorted(set(words))
        self.ids = {word: i for i, word in enumerate(self.words)}

    def __len__(self):
        return len(self.words)

    def encode(self, words):
        return [self.ids[word] for word in words]

    def decode(self, ids):
        """Words up to the first <eos>, padding and <bos> left out."""
        words = []
        for i in ids:
            if i == self.ids[EOS]:
                break
            if i not in (self.ids[PAD], self.ids[BOS]):
                words.append(self.words[i])
        return words


def _target_words():
    words = [PLURAL_MARK, *NOUNS.values(), *PREPOSITIONS.values()]
    words += [w for forms in ADJECTIVES.values() for w in forms]
    words += [w for forms in DETERMINERS.values() for w in forms if w]
    words += [w for forms in VERBS.values() for w in forms]
    return words + [w for words_ in ADVERBS.values() for w in words_]


class TranslationTask:
    """Draws sentence pairs of the language pair above; `source_vocab` and `target_vocab` number them."""

    pad_id, bos_id, eos_id = 0, 1, 2

    def __init__(self, seed=0):
        self.rng = np.random.default_rng(seed)
        self.source_vocab = Vocabulary([w for pair in NOUNS for w in pair] + list(ADJECTIVES) + list(DETERMINERS)
                                       + [w for pair in VERBS for w in pair] + list(PREPOSITIONS) + list(ADVERBS))
        self.target_vocab = Vocabulary(_target_words())
        self._excluded = set()

    # ------------------------------------------------------------------ drawing sentences
    def _noun_phrase(self):
        """(source words, target words, plural?) of one noun phrase."""
        rng = self.rng
        plural = bool(rng.random() < 0.5)
        choices = [d for d, forms in DETERMINERS.items() if forms[plural]] + ([None] if plural else [])
        determiner = choices[rng.integers(len(choices))]                      # plurals may go bare
        adjectives = list(rng.choice(list(ADJECTIVES), size=rng.choice(3, p=[0.4, 0.35, 0.25]), replace=False))
        noun = list(NOUNS)[rng.integers(len(NOUNS))]
        source = ([determiner] if determiner else []) + adjectives + [noun[plural]]
        target = ([DETERMINERS[determiner][plural]] if determiner else []) + [NOUNS[noun]]
        target += [PLURAL_MARK] if plural else []
        target += [ADJECTIVES[a][plural] for a in adjectives]
        return source, target, plural

    def _draw(self):
        rng = self.rng
        subject, subject_t, plural = self._noun_phrase()
        obj, obj_t, _ = self._noun_phrase()
        verb = list(VERBS)[rng.integers(len(VERBS))]
        source, target_place, target_manner = subject + [verb[plural]] + obj, [], []
        if rng.random() < 0.4:
            preposition = list(PREPOSITIONS)[rng.integers(len(PREPOSITIONS))]
            place, place_t, _ = self._noun_phrase()
            source += [preposition] + place
            target_place = place_t + [PREPOSITIONS[preposition]]
        if rng.random() < 0.5:
            adverb = list(ADVERBS)[rng.integers(len(ADVERBS))]
            source.append(adverb)
            target_manner = list(ADVERBS[adverb])
        target = subject_t + target_place + obj_t + target_manner + [VERBS[verb][plural]]
        return source, target

    def sample(self):
        """(source words, target words) of 3 to 12 source words, never one set aside by held_out."""
        while True:
            source, target = self._draw()
            if len(source) <= MAX_WORDS and tuple(source) not in self._excluded:
                return source, target

    def held_out(self, n):
        """n distinct pairs that `sample` will not draw from now on: a test set of unseen sentences."""
        pairs = {}
        while len(pairs) < n:
            source, target = self.sample()
            pairs[tuple(source)] = target
        self._excluded.update(pairs)
        return [(list(source), target) for source, target in pairs.items()]

    # ------------------------------------------------------------------ to ids
    def batch(self, pairs):
        """Padded id arrays for a list of (source, target) word lists:
        src (B, S), tgt_in = <bos> target (B, T), tgt_out = target <eos> (B, T)."""
        sources = [self.source_vocab.encode(source) for source, _ in pairs]
        targets = [self.target_vocab.encode(target) for _, target in pairs]
        src = _pad(sources, self.pad_id)
        tgt_in = _pad([[self.bos_id] + t for t in targets], self.pad_id)
        tgt_out = _pad([t + [self.eos_id] for t in targets], self.pad_id)
        return src, tgt_in, tgt_out


def _pad(rows, pad_id):
    out = np.full((len(rows), max(len(r) for r in rows)), pad_id, dtype=np.int64)
    for i, row in enumerate(rows):
        out[i, :len(row)] = row
    return out
