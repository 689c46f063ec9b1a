"""Computes the scikit-learn side of the TF-IDF parity test, once; the output is committed.

    python make_sklearn_fixture.py > sklearn_tfidf.json   (scikit-learn 1.9.1)

The corpus is written here (unicode, punctuation, stop words, bigrams, empty and one-word
documents); each configuration's vocabulary and non-zero weights are stored.
"""
import json
import sklearn
from sklearn.feature_extraction.text import TfidfVectorizer

CORPUS = [
    "The quick brown fox jumps over the lazy dog.",
    "A quick brown dog outpaces a quick fox!",
    "Don't panic: the answer is 42, and the question is unknown...",
    "Café naïve résumé — CAFÉ, café; Straße and STRASSE are different words.",
    "ΟΔΥΣΣΕΥΣ and Ὀδυσσεύς sailed home; Σίσυφος pushed a stone.",
    "東京タワー and 東京 are in Japan; ｆｕｌｌｗｉｄｔｈ letters stay as they are.",
    "snake_case names, CamelCase names and kebab-case names: e-mail, x-ray.",
    "Numbers like 3.14, ½ and ２０２４ count as word characters; so does the Roman numeral Ⅻ.",
    "",
    "word",
    "I",
    "Emoji 🙂 split tokens🙂apart, and tabs\tand\nnewlines too.",
    "İstanbul has a dotted capital I; the quick brown fox visits İstanbul.",
    "The the THE tHe: repeated words repeated words repeated.",
]

CONFIGURATIONS = {
    "defaults": dict(),
    "original": dict(stop_words="english", ngram_range=(1, 2), sublinear_tf=True),
    "no_smooth_l1_min_df": dict(smooth_idf=False, norm="l1", min_df=2, ngram_range=(1, 2)),
    "raw_counts_max_df": dict(use_idf=False, norm=None, max_df=0.3, lowercase=False),
    "max_features_custom_stop": dict(max_features=8, stop_words=["quick", "brown", "repeated"], ngram_range=(1, 3)),
}

result = {"sklearn": sklearn.__version__, "corpus": CORPUS, "configurations": {}}
for name, options in CONFIGURATIONS.items():
    vectorizer = TfidfVectorizer(**options)
    matrix = vectorizer.fit_transform(CORPUS).tocoo()
    vocabulary = sorted(vectorizer.vocabulary_, key=vectorizer.vocabulary_.get)
    entries = sorted(zip(matrix.row.tolist(), matrix.col.tolist(), matrix.data.tolist()))
    result["configurations"][name] = {
        "options": {k: list(v) if isinstance(v, tuple) else v for k, v in options.items()},
        "vocabulary": vocabulary,
        "idf": vectorizer.idf_.tolist() if vectorizer.use_idf else None,
        "entries": [[r, c, v] for r, c, v in entries],
    }
print(json.dumps(result, ensure_ascii=False, indent=None, separators=(",", ":")))
