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
#   kornli/  xnli.dev.ko.tsv (2,490)  xnli.test.ko.tsv (5,010)  multinli.train.ko.tsv (392,702)
#            snli_1.0_train.ko.tsv (550,152), and train.ko.tsv: both training sets (942,854)
#                                    github.com/kakaobrain/KorNLUDatasets (CC BY-SA 4.0)
#   korsts/  sts-train.tsv (5,749)  sts-dev.tsv (1,500)  sts-test.tsv (1,379)   (same)
#   klue/    klue-{nli,sts}-v1.1_{train,dev}.json, klue-ner-v1.1_train.tsv (21,008 sentences,
#            the KLUE paper's count) and klue-ner-v1.1_dev.tsv (5,000)
#                                         github.com/KLUE-benchmark/KLUE (CC BY-SA 4.0)
#   korquad/ KorQuAD_v1.0_train.json (60,407 questions)  KorQuAD_v1.0_dev.json (5,774)
#                                         korquad.github.io (CC BY-ND 2.0 KR)
#
# Checksums: SUMS below holds the sha256 of the files as they are in the project's shared
# data copy (xnli dev/test, the three KorSTS files, the two KLUE dev files); they were not
# checked against a hash from the publishers, who publish none. A file without an entry (the
# KorNLI and KLUE training sets, never downloaded here) has its sha256 printed: compare it
# with a colleague's, or add it to SUMS once trusted.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA_DIR=${DATA_DIR:-data}
NSMC=https://raw.githubusercontent.com/e9t/nsmc/master
HATE=https://raw.githubusercontent.com/kocohub/korean-hate-speech/master
KRBERT=https://raw.githubusercontent.com/snunlp/KR-BERT/master/krbert_tensorflow
KRMEDIUM=https://raw.githubusercontent.com/snunlp/KR-BERT-MEDIUM/master
KLUE=https://raw.githubusercontent.com/KLUE-benchmark/KLUE/main/klue_benchmark
KORQUAD=https://korquad.github.io/dataset

fetch() {  # url destination
  if [ -s "$2" ]; then echo "  have $2"; return 0; fi
  echo "  get  $1"
  mkdir -p "$(dirname "$2")"
  curl -fsSL --retry 3 -o "$2.part" "$1" || { echo "download failed: $1" >&2; exit 1; }
  mv "$2.part" "$2"
}

SUMS="
821fb1c1c2e538ac2724a6132da36ffa379eb9a542ceb89243b3cf711377382c  kornli/xnli.dev.ko.tsv
0db53cf8e182283a0d0404ec3fe1b15d1e29236d23d22082dc20d43067254b3e  kornli/xnli.test.ko.tsv
b5aaa7f957d6ff46f4b6834a8b0f024a9234a6eefe9289aed66746b4533da3b8  korsts/sts-train.tsv
d835b65b424401fbcce6be28a78159df8d61f5b19977ea7a0b83b8cb6105f393  korsts/sts-dev.tsv
13f83a3440d9db52d134eb40303ce021b03264aa338fbf2871c8786ce04d2105  korsts/sts-test.tsv
0699db82be17766b26e199864e6260443e17ec6e91d1870e876419e388f245b1  klue/klue-nli-v1.1_dev.json
b6a0ae0c370e21687f7eef0fdea872a328bb2ecbdb020c546cb870d28606bf80  klue/klue-sts-v1.1_dev.json
"

check_sum() {  # name (relative to DATA_DIR): sha256 against SUMS, or print it
  local want got
  want=$(printf '%s\n' "$SUMS" | awk -v f="$1" '$2 == f { print $1 }')
  got=$(sha256sum "$DATA_DIR/$1" | cut -d' ' -f1)
  if [ -z "$want" ]; then
    echo "  sha256 $got  $1 (no checksum on record)"
  elif [ "$want" != "$got" ]; then
    echo "error: $DATA_DIR/$1 has sha256 $got, expected $want; delete it and run again" >&2
    exit 1
  else
    echo "  ok   $1 (sha256)"
  fi
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
KORNLU=https://raw.githubusercontent.com/kakaobrain/KorNLUDatasets/master

echo "KorNLI -> $DATA_DIR/kornli"
for name in xnli.dev.ko.tsv xnli.test.ko.tsv multinli.train.ko.tsv snli_1.0_train.ko.tsv; do
  fetch "$KORNLU/KorNLI/$name" "$DATA_DIR/kornli/$name"
  check_sum "kornli/$name"
done
check_rows "$DATA_DIR/kornli/xnli.dev.ko.tsv" 2490
check_rows "$DATA_DIR/kornli/xnli.test.ko.tsv" 5010
check_rows "$DATA_DIR/kornli/multinli.train.ko.tsv" 392702
check_rows "$DATA_DIR/kornli/snli_1.0_train.ko.tsv" 550152
if [ ! -s "$DATA_DIR/kornli/train.ko.tsv" ]; then
  { cat "$DATA_DIR/kornli/multinli.train.ko.tsv"; echo
    tail -n +2 "$DATA_DIR/kornli/snli_1.0_train.ko.tsv"; } | awk 'NF' > "$DATA_DIR/kornli/train.ko.tsv.part"
  mv "$DATA_DIR/kornli/train.ko.tsv.part" "$DATA_DIR/kornli/train.ko.tsv"
fi
check_rows "$DATA_DIR/kornli/train.ko.tsv" 942854

echo "KorSTS -> $DATA_DIR/korsts"
for name in sts-train.tsv sts-dev.tsv sts-test.tsv; do
  fetch "$KORNLU/KorSTS/$name" "$DATA_DIR/korsts/$name"
  check_sum "korsts/$name"
done

echo "KLUE NLI and STS -> $DATA_DIR/klue"
for task in nli sts; do
  for split in train dev; do
    name=klue-$task-v1.1_$split.json
    fetch "$KLUE/klue-$task-v1.1/$name" "$DATA_DIR/klue/$name"
    check_sum "klue/$name"
  done
done

echo "KLUE-NER -> $DATA_DIR/klue"
fetch "$KLUE/klue-ner-v1.1/klue-ner-v1.1_train.tsv" "$DATA_DIR/klue/klue-ner-v1.1_train.tsv"
fetch "$KLUE/klue-ner-v1.1/klue-ner-v1.1_dev.tsv" "$DATA_DIR/klue/klue-ner-v1.1_dev.tsv"
# sha256 of the dev file as ../shared/data holds it; the train file is checked by its count
# of sentences (its checksum was not measured here).
echo "0f4d5e818f7b82d299c3a87856fc40a706f5943207580ddb252397e387050a54  $DATA_DIR/klue/klue-ner-v1.1_dev.tsv" \
  | sha256sum -c --quiet - || { echo "error: $DATA_DIR/klue/klue-ner-v1.1_dev.tsv differs from KLUE v1.1's; delete it and run again" >&2; exit 1; }
check_sentences() {  # file expected_sentences (a blank line ends each sentence)
  local n
  n=$(grep -c '^$' "$1" || true)
  if [ "$n" -ne "$2" ]; then
    echo "error: $1 has $n sentences, expected $2; delete it and run again" >&2
    exit 1
  fi
  echo "  ok   $1 ($n sentences)"
}
check_sentences "$DATA_DIR/klue/klue-ner-v1.1_train.tsv" 21008
check_sentences "$DATA_DIR/klue/klue-ner-v1.1_dev.tsv" 5000
echo "done: DATA_DIR=$DATA_DIR"
