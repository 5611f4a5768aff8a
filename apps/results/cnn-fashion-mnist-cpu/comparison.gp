set terminal pngcairo size 1400,560 font ',11'
set output 'apps/results/cnn-fashion-mnist-cpu/comparison.png'
set multiplot layout 1,2 title "cnn on fashion-mnist, 120 s of training per sampler, mean of seeds 0 and 1, 2-core CPU"
set grid
set key top right
set xlabel 'training time (s)'
set ylabel 'training loss (10k subset)'
set logscale y
plot 'apps/results/cnn-fashion-mnist-cpu/curves.dat' index 0 using 1:2 with linespoints lw 2 pt 7 ps 0.6 title 'uniform', 'apps/results/cnn-fashion-mnist-cpu/curves.dat' index 1 using 1:2 with linespoints lw 2 pt 7 ps 0.6 title 'loss', 'apps/results/cnn-fashion-mnist-cpu/curves.dat' index 2 using 1:2 with linespoints lw 2 pt 7 ps 0.6 title 'upper-bound', 'apps/results/cnn-fashion-mnist-cpu/curves.dat' index 3 using 1:2 with linespoints lw 2 pt 7 ps 0.6 title 'crest', 'apps/results/cnn-fashion-mnist-cpu/curves.dat' index 4 using 1:2 with linespoints lw 2 pt 7 ps 0.6 title 'srs'
unset logscale y
set ylabel 'test error (%)'
# From the first evaluation after step 0: the untrained model's 90% would flatten every curve.
plot 'apps/results/cnn-fashion-mnist-cpu/curves.dat' index 0 every ::1 using 1:3 with linespoints lw 2 pt 7 ps 0.6 title 'uniform', 'apps/results/cnn-fashion-mnist-cpu/curves.dat' index 1 every ::1 using 1:3 with linespoints lw 2 pt 7 ps 0.6 title 'loss', 'apps/results/cnn-fashion-mnist-cpu/curves.dat' index 2 every ::1 using 1:3 with linespoints lw 2 pt 7 ps 0.6 title 'upper-bound', 'apps/results/cnn-fashion-mnist-cpu/curves.dat' index 3 every ::1 using 1:3 with linespoints lw 2 pt 7 ps 0.6 title 'crest', 'apps/results/cnn-fashion-mnist-cpu/curves.dat' index 4 every ::1 using 1:3 with linespoints lw 2 pt 7 ps 0.6 title 'srs'
unset multiplot
