#!/bin/bash
# vit-patchify end to end: byte-identical to Pillow + NumPy on every format, conversion,
# filter and preset (fixtures made by tests/data/image/make-fixtures.py), IDX files and
# labels, streaming, threads, the index, the preview, unpatchify, and every error.
source "$(dirname "$0")/lib.sh"
d=tests/data/image
fashion=/usr/share/datasets/fashion-mnist

# The shape in a .npy header.
npy_shape() { head -c 128 "$1" | grep -ao "'shape': ([0-9, ]*)"; }

# same_as_numpy NAME OPTIONS... INPUT: the .npy equals $d/NAME.npy, which Pillow + NumPy made.
same_as_numpy() {
    local name=$1
    shift
    expect_success "$name: runs" vit-patchify -o "$work/$name.npy" "$@"
    expect_same "$name: equals Pillow + NumPy" "$work/$name.npy" "$d/$name.npy"
}

# --- Every format and channel conversion, no resize: exactly equal -----------------------
none=(--preset none --patch 8)
same_as_numpy rgb-none "${none[@]}" $d/rgb.png
same_as_numpy rgb-none-pixels "${none[@]}" --layout pixels $d/rgb.png
same_as_numpy rgb-gray "${none[@]}" --channels 1 $d/rgb.png
same_as_numpy gray-none "${none[@]}" $d/gray.png
same_as_numpy gray-gray --preset none --patch 4 --channels 1 $d/gray.png
same_as_numpy la-none "${none[@]}" $d/la.png
same_as_numpy rgba-none "${none[@]}" $d/rgba.png
same_as_numpy rgba-gray "${none[@]}" --channels 1 $d/rgba.png
same_as_numpy palette-none "${none[@]}" $d/palette.png
same_as_numpy gif-none "${none[@]}" $d/palette.gif
same_as_numpy bmp-none "${none[@]}" $d/rgb.bmp
same_as_numpy tga-none "${none[@]}" $d/rgb.tga
same_as_numpy ppm-none "${none[@]}" $d/rgb.ppm
same_as_numpy pgm-none "${none[@]}" $d/gray.pgm
same_as_numpy rgb16-none "${none[@]}" $d/rgb16.png
same_as_numpy gray16-none "${none[@]}" $d/gray16.png
same_as_numpy jpeg-none "${none[@]}" --crop 64x48 $d/photo.jpg
same_as_numpy gray-jpeg-none "${none[@]}" $d/gray.jpg
same_as_numpy cmyk-none "${none[@]}" $d/cmyk.jpg
same_as_numpy rgb-clip-normalise --resize none --crop none --patch 8 $d/rgb.png
same_as_numpy rgb-crop "${none[@]}" --crop 24x16 $d/rgb.png

# --- Resizing: Pillow's resampler, replicated exactly ------------------------------------
same_as_numpy photo-clip-64 --resize 64 --crop 64 $d/photo.jpg
same_as_numpy portrait-clip-64 --resize 64 --crop 64 $d/portrait.jpg
same_as_numpy photo-bicubic-down "${none[@]}" --resize 56x40 $d/photo.jpg
same_as_numpy photo-bilinear-down "${none[@]}" --resize 56x40 --filter bilinear $d/photo.jpg
same_as_numpy photo-nearest-down "${none[@]}" --resize 56x40 --filter nearest $d/photo.jpg
same_as_numpy photo-bicubic-width "${none[@]}" --resize 64x120 --crop 64x112 $d/photo.jpg
same_as_numpy photo-bicubic-height --preset none --patch 16 --resize 160x48 --crop 160x48 $d/photo.jpg
same_as_numpy rgb-bicubic-up "${none[@]}" --resize 88x72 $d/rgb.png
same_as_numpy rgb-bilinear-up "${none[@]}" --resize 88x72 --filter bilinear $d/rgb.png
same_as_numpy rgb-nearest-up "${none[@]}" --resize 88x72 --filter nearest $d/rgb.png
same_as_numpy gray-bicubic-up "${none[@]}" --resize 56x48 --channels 1 $d/gray.png
same_as_numpy gray-shorter-side "${none[@]}" --resize 45 --crop 48x40 $d/gray.png
# The whole clip preset on a 500x375 photograph: the pixels Pillow resized, then the same
# normalisation (checked exactly above).
expect_success "clip preset on a photograph" vit-patchify -o "$work/big.npy" $d/big.jpg
expect_success "clip normalisation of Pillow's pixels" vit-patchify --resize none --crop none -o "$work/big-pillow.npy" $d/big-clip-224.png
expect_same "clip preset: Pillow's resize and crop exactly" "$work/big.npy" "$work/big-pillow.npy"
expect_output "clip preset: (1, 196, 768)" <(echo "'shape': (1, 196, 768)") npy_shape "$work/big.npy"

# --- Many images: streaming in order, same bytes on any thread count, stdout ------------
images=($d/photo.jpg $d/rgb.png $d/portrait.jpg $d/gray.png $d/cmyk.jpg $d/palette.gif $d/rgb16.png $d/la.png)
vit-patchify --threads 1 --resize 64 --crop 64 -o "$work/one.npy" "${images[@]}"
expect_success "8 images on 2 threads" vit-patchify --threads 2 --resize 64 --crop 64 -o "$work/two.npy" "${images[@]}"
expect_same "2 threads give the bytes of 1" "$work/one.npy" "$work/two.npy"
expect_output "standard output gives the bytes of a file" "$work/one.npy" bash -c "vit-patchify --threads 3 --resize 64 --crop 64 ${images[*]} | cat"
printf '%s\n' "${images[@]:2}" >"$work/list"
expect_success "--files-from adds paths" vit-patchify --threads 2 --resize 64 --crop 64 -o "$work/listed.npy" --files-from "$work/list" "${images[@]:0:2}"
expect_same "--files-from: the same rows" "$work/one.npy" "$work/listed.npy"
expect_output "--files-from - reads stdin" "$work/one.npy" bash -c "printf '%s\n' ${images[*]} | vit-patchify --resize 64 --crop 64 --files-from - | cat"
expect_output "- reads an image from stdin" "$d/rgb-none.npy" bash -c "vit-patchify --preset none --patch 8 - <$d/rgb.png | cat"
printf 'row\tfile\trecord\twidth\theight\n0\t%s\t\t160\t120\n1\t%s\t\t40\t32\n' $d/photo.jpg $d/rgb.png >"$work/expected.tsv"
expect_success "--index" vit-patchify --resize 64 --crop 64 --index "$work/index.tsv" -o "$work/indexed.npy" $d/photo.jpg $d/rgb.png
expect_same "--index: row, file, record, original size" "$work/index.tsv" "$work/expected.tsv"
expect_success "--draft" vit-patchify --draft --resize 64 --crop 64 --index "$work/draft.tsv" -o "$work/draft.npy" $d/big.jpg
expect_same "--draft: the index keeps the stored size" "$work/draft.tsv" <(printf 'row\tfile\trecord\twidth\theight\n0\t%s\t\t500\t375\n' $d/big.jpg)

# --- IDX: Fashion-MNIST, gzip or not, with labels ----------------------------------------
same_as_numpy tiny-images --preset none --channels 1 --patch 7 $d/tiny-images.idx3-ubyte.gz
expect_success "IDX without gzip, labels" vit-patchify --preset none --channels 1 --patch 7 --labels $d/tiny-labels.idx1-ubyte -o "$work/tiny.npy" $d/tiny-images.idx3-ubyte
expect_same "IDX without gzip: the same patches" "$work/tiny.npy" $d/tiny-images.npy
expect_same "--labels: int64 labels beside the output" "$work/tiny.labels.npy" $d/tiny-labels.npy
cp $d/tiny-images.idx3-ubyte "$work/digits.data"
expect_success "--idx reads any name as IDX" vit-patchify --idx --preset none --channels 1 --patch 7 -o "$work/digits.npy" "$work/digits.data"
expect_same "--idx: the same patches" "$work/digits.npy" $d/tiny-images.npy
expect_success "Fashion-MNIST test set, 10,000 images" vit-patchify --preset none --channels 1 --patch 4 \
    --labels $fashion/t10k-labels-idx1-ubyte.gz -o "$work/fashion.npy" $fashion/t10k-images-idx3-ubyte.gz
expect_output "Fashion-MNIST: (10000, 49, 16)" <(echo "'shape': (10000, 49, 16)") npy_shape "$work/fashion.npy"
expect_output "Fashion-MNIST: 10,000 labels" <(echo "'shape': (10000,)") npy_shape "$work/fashion.labels.npy"
expect_output "Fashion-MNIST: 10000 x 784 float32 after the header" <(echo $((128 + 10000 * 49 * 16 * 4))) stat -c %s "$work/fashion.npy"

# --- Preview and unpatchify ---------------------------------------------------------------
expect_success "--preview" vit-patchify --preset none --patch 8 --preview "$work/preview.png" -o "$work/p.npy" $d/rgb.png $d/gray.png
# 40x32 in 8x8 patches with 1-pixel gaps: 44x35.
expect_output "--preview: the grid with gaps" <(printf '0000002c00000023\n') bash -c "od -An -tx1 -j16 -N8 '$work/preview.png' | tr -d ' \n'; echo"
expect_success "--unpatchify" vit-patchify --unpatchify --preset none --patch 8 --crop 40x32 -o "$work/images" "$work/p.npy"
expect_success "unpatchified images patchify again" vit-patchify --preset none --patch 8 -o "$work/again.npy" "$work/images/000000.png" "$work/images/000001.png"
expect_same "unpatchify is the inverse of patchify" "$work/p.npy" "$work/again.npy"
expect_success "--unpatchify with the clip preset" vit-patchify --unpatchify -o "$work/big-images" "$work/big.npy"
expect_success "back again" vit-patchify --resize none --crop none -o "$work/big-again.npy" "$work/big-images/000000.png"
expect_same "clip patches survive the round trip" "$work/big.npy" "$work/big-again.npy"

# --- Bad input: exit 1, one line naming the file (and record), no output file -------------
printf 'not an image' >"$work/text.png"
: >"$work/empty.png"
printf 'PNG\r\n' >"$work/bad-idx3-ubyte"
head -c 2000 $d/tiny-images.idx3-ubyte >"$work/cut.idx3"
expect_failure "an image that does not decode" 1 "^vit-patchify: .*/text.png: cannot decode: unknown image type$" vit-patchify -o "$work/out.npy" $d/rgb.png "$work/text.png"
expect_no_file "no output after an error" "$work/out.npy"
expect_failure "an empty file" 1 "empty.png: cannot decode: empty file" vit-patchify -o "$work/out.npy" "$work/empty.png"
expect_failure "a truncated JPEG" 1 "truncated.jpg: cannot decode JPEG: the file is truncated" vit-patchify -o "$work/out.npy" $d/truncated.jpg
expect_failure "a missing file" 1 "absent.png: No such file or directory" vit-patchify -o "$work/out.npy" "$work/absent.png"
expect_failure "smaller than the crop" 1 "rgb.png: the image is 40x32 after resizing, smaller than the 64x64 crop" vit-patchify --resize none --crop 64 -o "$work/out.npy" $d/rgb.png
expect_failure "sizes that differ without a crop" 1 "portrait.jpg: the image is 64x85 after preprocessing, but the first was 85x64; give --crop or --resize WxH" vit-patchify --resize 64 --crop none --patch 1 -o "$work/out.npy" $d/photo.jpg $d/portrait.jpg
expect_failure "not a multiple of the patch" 1 "photo.jpg: the image is 85x64 after preprocessing, not a multiple of the patch size 16" vit-patchify --resize 64 --crop none -o "$work/out.npy" $d/photo.jpg
expect_failure "an IDX file with the wrong magic" 1 "bad-idx3-ubyte: not an IDX file: magic 50 4e 47 0d" vit-patchify -o "$work/out.npy" "$work/bad-idx3-ubyte"
expect_failure "a truncated IDX file" 1 "cut.idx3: record 2: truncated: the file ends after 2 of 5 records" vit-patchify --preset none --channels 1 --patch 7 -o "$work/out.npy" "$work/cut.idx3"
expect_no_file "no output after an IDX error" "$work/out.npy"
expect_failure "labels that do not match" 1 "t10k-labels-idx1-ubyte.gz: 10000 labels for the 5 images of" vit-patchify --preset none --channels 1 --patch 7 --labels $fashion/t10k-labels-idx1-ubyte.gz -o "$work/out.npy" $d/tiny-images.idx3-ubyte
expect_no_file "no labels file after an error" "$work/out.labels.npy"
expect_failure "--unpatchify on a wrong shape" 1 "tiny-labels.npy: expected patches of shape \(N, patches, C·P·P\), not 1 dimensions" vit-patchify --unpatchify -o "$work/none" $d/tiny-labels.npy
expect_failure "--unpatchify with the wrong patch size" 1 "patches of 49 numbers are not 1 or 3 channels of 16x16" vit-patchify --unpatchify -o "$work/none" $d/tiny-images.npy

# --- --skip-bad: skipped inputs listed on stderr, exit 0 ----------------------------------
expect_warning "--skip-bad lists what it skips" "skipped .*/text.png: cannot decode: unknown image type" vit-patchify --skip-bad --resize 64 --crop 64 -o "$work/skipped.npy" $d/photo.jpg "$work/text.png" $d/truncated.jpg $d/rgb.png
expect_warning "--skip-bad counts" "warning: skipped 2 of 4 images" vit-patchify --skip-bad --resize 64 --crop 64 -o "$work/skipped.npy" $d/photo.jpg "$work/text.png" $d/truncated.jpg $d/rgb.png
vit-patchify --resize 64 --crop 64 -o "$work/kept.npy" $d/photo.jpg $d/rgb.png
expect_same "--skip-bad: the rows of the good images" "$work/skipped.npy" "$work/kept.npy"
expect_warning "--skip-bad: a truncated IDX file" "skipped .*cut.idx3: record 2: truncated: the file ends after 2 of 5 records \(and the 2 records after it\)" vit-patchify --skip-bad --preset none --channels 1 --patch 7 -o "$work/cut.npy" "$work/cut.idx3"
expect_output "--skip-bad: its first records" <(echo "'shape': (2, 16, 49)") npy_shape "$work/cut.npy"
expect_success "--skip-bad -q: quiet" vit-patchify -q --skip-bad -o "$work/skipped.npy" "$work/text.png"
expect_output "--skip-bad: nothing left is an empty array" <(echo "'shape': (0, 196, 768)") npy_shape "$work/skipped.npy"

# --- Usage errors: exit 2 -----------------------------------------------------------------
expect_failure "no input" 2 "no images" vit-patchify -o "$work/out.npy"
expect_failure "unknown preset" 2 "unknown preset 'dino' \(presets: clip, imagenet, vit, none\)" vit-patchify --preset dino $d/rgb.png
expect_failure "unknown filter" 2 "unknown filter 'lanczos'" vit-patchify --filter lanczos $d/rgb.png
expect_failure "unknown layout" 2 "unknown layout 'hwc'" vit-patchify --layout hwc $d/rgb.png
expect_failure "bad size" 2 "--resize takes a size N or WxH" vit-patchify --resize 0x3 $d/rgb.png
expect_failure "crop not a multiple of the patch" 2 "the images will be 100x100, not a multiple of the patch size 16" vit-patchify --crop 100 $d/rgb.png
expect_failure "three means for one channel" 2 "--mean has 3 values for 1 channel" vit-patchify --channels 1 $d/rgb.png
expect_failure "two channels" 2 "--channels must be 1 or 3" vit-patchify --channels 2 --mean 0 --std 1 $d/rgb.png
expect_failure "--skip-bad to a stream" 2 "--skip-bad needs -o FILE" vit-patchify --skip-bad $d/rgb.png
expect_failure "--labels to stdout" 2 "--labels writes OUTPUT.labels.npy beside the output: give -o FILE" vit-patchify --labels $d/tiny-labels.idx1-ubyte $d/tiny-images.idx3-ubyte
expect_failure "--labels for images" 2 "--labels goes with IDX inputs only" vit-patchify --labels $d/tiny-labels.idx1-ubyte -o "$work/out.npy" $d/tiny-images.idx3-ubyte $d/rgb.png
expect_failure "--labels twice for one IDX file" 2 "--labels given 2 times for 1 IDX input" vit-patchify --labels $d/tiny-labels.idx1-ubyte --labels $d/tiny-labels.idx1-ubyte -o "$work/out.npy" $d/tiny-images.idx3-ubyte
expect_failure "stdin twice" 2 "standard input cannot hold both an image and the --files-from list" vit-patchify --files-from - -
expect_failure "--unpatchify without a folder" 2 "name their folder with -o" vit-patchify --unpatchify $d/tiny-images.npy
expect_output "binary output to a terminal is refused" <(echo 1) bash -c "script -qec 'vit-patchify $d/rgb.png' /dev/null | grep -c 'refusing to write binary output to a terminal'"

finish
