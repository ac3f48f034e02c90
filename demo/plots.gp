# The report's plots. Run as
#   gnuplot -e "out='OUT'; methods='full lora-r8 ...'" plots.gp
# with OUT/report/methods.tsv (method, trainable, dev_acc, dev_mcc, test_acc, test_mcc) and
# OUT/report/examples/*.png (a few Fashion-MNIST test images, through vit-patchify and back).

set terminal pngcairo size 900,560 font ",11"
set datafile separator "\t"
set key outside right top noautotitle
set grid

# Training loss of each method on the task, smoothed.
set output out."/report/loss.png"
set title "Fine-tuning on the fortune-category task: training loss"
set xlabel "step"
set ylabel "cross-entropy (smoothed)"
# Up to twelve lines: the eight default colours, then dashed ones.
do for [i=9:12] { set linetype i linecolor i - 8 dashtype 2 }
plot for [i=1:words(methods)] out."/methods/".word(methods, i)."/log.tsv" using 1:3 skip 1 smooth bezier \
    with lines linetype i linewidth 2 title word(methods, i)

# Test accuracy against trainable parameters.
set output out."/report/accuracy.png"
set title "Test accuracy against trainable parameters"
set xlabel "trainable parameters (log scale)"
set ylabel "test accuracy"
set logscale x
set key off
plot out."/report/methods.tsv" using 2:5 skip 1 with points pointtype 7 pointsize 1.5, \
     "" using 2:5:1 skip 1 with labels offset 0,1 font ",9"
unset logscale x

# Pre-training and CLIP: training loss.
set output out."/report/pretrain.png"
set title "Pre-training the GPT-2 on the fortunes: training loss"
set xlabel "step"
set ylabel "cross-entropy (smoothed)"
plot out."/pretrain/log.tsv" using 1:3 skip 1 smooth bezier with lines linewidth 2

set output out."/report/clip.png"
set title "CLIP on Fashion-MNIST: InfoNCE loss"
set ylabel "loss (smoothed)"
plot out."/clip/log.tsv" using 1:3 skip 1 smooth bezier with lines linewidth 2

# A few test images with the 7x7 patches the models see.
set terminal pngcairo size 960,150
set output out."/report/patches.png"
unset title
unset xlabel
unset ylabel
set datafile separator whitespace
set multiplot layout 1,8
set size ratio -1
set xtics -0.5, 7 format ""
set ytics -0.5, 7 format ""
set grid front linetype 1 linecolor rgb "red" linewidth 1 dashtype solid
set xrange [-0.5:27.5]
set yrange [-0.5:27.5]
set tics scale 0
set lmargin 0.5
set rmargin 0.5
set tmargin 0.5
set bmargin 0.5
do for [i=0:7] {
    plot sprintf("%s/report/examples/%06d.png", out, i) binary filetype=png with rgbimage
}
unset multiplot
