set terminal pngcairo size 1400,560 font ',11'
set output 'apps/results/wrn-fashion-mnist-h100/comparison.png'
set multiplot layout 1,2 title "WRN-28-2 on Fashion-MNIST, 24 s of training per sampler, NVIDIA H100 80GB HBM3"
set grid
set key top right
set xlabel 'training time (s)'
set ylabel 'training loss (10k subset)'
set logscale y
plot 'apps/results/wrn-fashion-mnist-h100/curves.dat' index 0 using 1:2 with linespoints lw 2 pt 7 ps 0.6 title 'uniform', 'apps/results/wrn-fashion-mnist-h100/curves.dat' index 1 using 1:2 with linespoints lw 2 pt 7 ps 0.6 title 'loss', 'apps/results/wrn-fashion-mnist-h100/curves.dat' index 2 using 1:2 with linespoints lw 2 pt 7 ps 0.6 title 'upper-bound', 'apps/results/wrn-fashion-mnist-h100/curves.dat' index 3 using 1:2 with linespoints lw 2 pt 7 ps 0.6 title 'crest', 'apps/results/wrn-fashion-mnist-h100/curves.dat' index 4 using 1:2 with linespoints lw 2 pt 7 ps 0.6 title 'srs', 'apps/results/wrn-fashion-mnist-h100/curves.dat' index 5 using 1:2 with linespoints lw 2 pt 7 ps 0.6 title 'online-batch'
unset logscale y
set ylabel 'test error (%)'
# From the first evaluation after step 0: the untrained model's 90% would flatten every curve.
plot 'apps/results/wrn-fashion-mnist-h100/curves.dat' index 0 every ::1 using 1:3 with linespoints lw 2 pt 7 ps 0.6 title 'uniform', 'apps/results/wrn-fashion-mnist-h100/curves.dat' index 1 every ::1 using 1:3 with linespoints lw 2 pt 7 ps 0.6 title 'loss', 'apps/results/wrn-fashion-mnist-h100/curves.dat' index 2 every ::1 using 1:3 with linespoints lw 2 pt 7 ps 0.6 title 'upper-bound', 'apps/results/wrn-fashion-mnist-h100/curves.dat' index 3 every ::1 using 1:3 with linespoints lw 2 pt 7 ps 0.6 title 'crest', 'apps/results/wrn-fashion-mnist-h100/curves.dat' index 4 every ::1 using 1:3 with linespoints lw 2 pt 7 ps 0.6 title 'srs', 'apps/results/wrn-fashion-mnist-h100/curves.dat' index 5 every ::1 using 1:3 with linespoints lw 2 pt 7 ps 0.6 title 'online-batch'
unset multiplot
