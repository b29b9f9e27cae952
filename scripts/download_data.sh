#!/usr/bin/env bash
# Fetches the public data sets into DATA_DIR (default data/) in the layout the scripts read.
# Needs internet; the tests never call it.
#
#   nsmc/    train.tsv (130,000)  dev.tsv (20,000, the last rows of the official training set)
#            test.tsv (50,000, the official test set)         github.com/e9t/nsmc (CC0 1.0)
#   hate/    train.tsv (7,896)  dev.tsv (471)  test.no_label.tsv (974)
#                                         github.com/kocohub/korean-hate-speech (CC BY-SA 4.0)
#   corpus/  nsmc_reviews.txt (the NSMC training reviews, 100 reviews a document) and
#            news_comments.txt (unlabeled news comments, part 5 of the HateSpeech corpus)
#   krbert/  the published KR-BERT and KR-BERT-MEDIUM vocabularies and configs
#   korquad/ KorQuAD_v1.0_train.json (60,407 questions)  KorQuAD_v1.0_dev.json (5,774)
#                                         korquad.github.io (CC BY-ND 2.0 KR)
set -euo pipefail
cd "$(dirname "$0")/.."
DATA_DIR=${DATA_DIR:-data}
NSMC=https://raw.githubusercontent.com/e9t/nsmc/master
HATE=https://raw.githubusercontent.com/kocohub/korean-hate-speech/master
KRBERT=https://raw.githubusercontent.com/snunlp/KR-BERT/master/krbert_tensorflow
KRMEDIUM=https://raw.githubusercontent.com/snunlp/KR-BERT-MEDIUM/master
KORQUAD=https://korquad.github.io/dataset

fetch() {  # url destination
  if [ -s "$2" ]; then echo "  have $2"; return 0; fi
  echo "  get  $1"
  mkdir -p "$(dirname "$2")"
  curl -fsSL --retry 3 -o "$2.part" "$1" || { echo "download failed: $1" >&2; exit 1; }
  mv "$2.part" "$2"
}

check_rows() {  # file expected_data_rows
  local n=$(( $(wc -l < "$1") - 1 ))
  if [ "$n" -ne "$2" ]; then
    echo "error: $1 has $n data rows, expected $2; delete it and run again" >&2
    exit 1
  fi
  echo "  ok   $1 ($n rows)"
}

echo "NSMC -> $DATA_DIR/nsmc"
fetch "$NSMC/ratings_train.txt" "$DATA_DIR/nsmc/ratings_train.txt"
fetch "$NSMC/ratings_test.txt" "$DATA_DIR/nsmc/ratings_test.txt"
if [ ! -s "$DATA_DIR/nsmc/train.tsv" ]; then
  head -n 130001 "$DATA_DIR/nsmc/ratings_train.txt" > "$DATA_DIR/nsmc/train.tsv"
  { head -n 1 "$DATA_DIR/nsmc/ratings_train.txt"; tail -n +130002 "$DATA_DIR/nsmc/ratings_train.txt"; } \
    > "$DATA_DIR/nsmc/dev.tsv"
  cp "$DATA_DIR/nsmc/ratings_test.txt" "$DATA_DIR/nsmc/test.tsv"
fi
check_rows "$DATA_DIR/nsmc/train.tsv" 130000
check_rows "$DATA_DIR/nsmc/dev.tsv" 20000
check_rows "$DATA_DIR/nsmc/test.tsv" 50000

echo "Korean HateSpeech -> $DATA_DIR/hate"
fetch "$HATE/labeled/train.tsv" "$DATA_DIR/hate/train.tsv"
fetch "$HATE/labeled/dev.tsv" "$DATA_DIR/hate/dev.tsv"
fetch "$HATE/test.no_label.tsv" "$DATA_DIR/hate/test.no_label.tsv"
check_rows "$DATA_DIR/hate/train.tsv" 7896
check_rows "$DATA_DIR/hate/dev.tsv" 471
check_rows "$DATA_DIR/hate/test.no_label.tsv" 974

echo "Pretraining corpus -> $DATA_DIR/corpus"
fetch "$HATE/unlabeled/unlabeled_comments_5.txt" "$DATA_DIR/corpus/news_comments.txt"
if [ ! -s "$DATA_DIR/corpus/nsmc_reviews.txt" ]; then
  # One review a line, a blank line after every 100 reviews (a document).
  tail -n +2 "$DATA_DIR/nsmc/train.tsv" | cut -f2 | awk 'NF { print; if (++n % 100 == 0) print "" }' \
    > "$DATA_DIR/corpus/nsmc_reviews.txt"
fi
echo "  ok   $DATA_DIR/corpus ($(cat "$DATA_DIR"/corpus/*.txt | wc -l) lines)"

check_git_blob() {  # file expected_git_blob_id
  # The id git gives the file's content (sha1 of "blob <size>\0" and the bytes): the
  # publisher's repository (github.com/korquad/korquad.github.io, dataset/) lists it.
  local id
  id=$({ printf 'blob %s\0' "$(wc -c < "$1" | tr -d ' ')"; cat "$1"; } | sha1sum | cut -d' ' -f1)
  if [ "$id" != "$2" ]; then
    echo "error: $1 has git blob id $id, expected $2 (the published file); delete it and" \
      "run again" >&2
    exit 1
  fi
  echo "  ok   $1 (git blob $id)"
}

echo "KorQuAD 1.0 -> $DATA_DIR/korquad"
fetch "$KORQUAD/KorQuAD_v1.0_train.json" "$DATA_DIR/korquad/KorQuAD_v1.0_train.json"
fetch "$KORQUAD/KorQuAD_v1.0_dev.json" "$DATA_DIR/korquad/KorQuAD_v1.0_dev.json"
check_git_blob "$DATA_DIR/korquad/KorQuAD_v1.0_train.json" 82e3c5939e5e61a1c4ae94e42676800e88ec52a6
check_git_blob "$DATA_DIR/korquad/KorQuAD_v1.0_dev.json" 6849d8c79140447018f5701a0453835c96608a07

echo "Published vocabularies and configs -> $DATA_DIR/krbert"
fetch "$KRMEDIUM/20000-vocab.txt" "$DATA_DIR/krbert/vocab_krmedium_20000.txt"
fetch "$KRMEDIUM/bert_config_v20K.json" "$DATA_DIR/krbert/bert_config_krmedium.json"
fetch "$KRBERT/vocab_char_16424.txt" "$DATA_DIR/krbert/vocab_char_16424.txt"
fetch "$KRBERT/bert_config_char16424.json" "$DATA_DIR/krbert/bert_config_char16424.json"
fetch "$KRBERT/vocab_subchar_12367.txt" "$DATA_DIR/krbert/vocab_subchar_12367.txt"
fetch "$KRBERT/bert_config_subchar12367.json" "$DATA_DIR/krbert/bert_config_subchar12367.json"
echo "done: DATA_DIR=$DATA_DIR"
