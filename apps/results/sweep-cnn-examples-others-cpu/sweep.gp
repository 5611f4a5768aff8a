set terminal pngcairo size 1400,560 font ',11'
set output 'apps/results/sweep-cnn-examples-others-cpu/sweep.png'
set multiplot layout 1,2 title "cnn on fashion-mnist, 3 seeds (mean ± sd), lr schedule cosine"
set grid
set key top right
set logscale x
set xrange [72000:450000]
set xtics ('90k' 90000, '180k' 180000, '360k' 360000)
set xlabel 'example budget (backpropagated examples, log scale)'
set ylabel 'test error (%), final evaluation'
set offsets 0, 0, graph 0.04, graph 0.04
plot 'apps/results/sweep-cnn-examples-others-cpu/sweep.dat' index 0 using ($1*0.967552):2:3 with yerrorlines lw 2 pt 7 ps 0.8 lc rgb '#9400d3' title 'uniform', 'apps/results/sweep-cnn-examples-others-cpu/sweep.dat' index 1 using ($1*0.989065):2:3 with yerrorlines lw 2 pt 7 ps 0.8 lc rgb '#009e73' title 'srs', 'apps/results/sweep-cnn-examples-others-cpu/sweep.dat' index 2 using ($1*1.01106):2:3 with yerrorlines lw 2 pt 7 ps 0.8 lc rgb '#56b4e9' title 'upper-bound', 'apps/results/sweep-cnn-examples-others-cpu/sweep.dat' index 3 using ($1*1.03354):2:3 with yerrorlines lw 2 pt 7 ps 0.8 lc rgb '#e69f00' title 'selective-backprop'
set ylabel 'training loss (10k subset), final evaluation'
set logscale y
set yrange [0.0988913:0.323635]
set ytics (0.1, 0.12, 0.15, 0.2, 0.25, 0.3)
plot 'apps/results/sweep-cnn-examples-others-cpu/sweep.dat' index 0 using ($1*0.967552):4:5:6 with yerrorlines lw 2 pt 7 ps 0.8 lc rgb '#9400d3' title 'uniform', 'apps/results/sweep-cnn-examples-others-cpu/sweep.dat' index 1 using ($1*0.989065):4:5:6 with yerrorlines lw 2 pt 7 ps 0.8 lc rgb '#009e73' title 'srs', 'apps/results/sweep-cnn-examples-others-cpu/sweep.dat' index 2 using ($1*1.01106):4:5:6 with yerrorlines lw 2 pt 7 ps 0.8 lc rgb '#56b4e9' title 'upper-bound', 'apps/results/sweep-cnn-examples-others-cpu/sweep.dat' index 3 using ($1*1.03354):4:5:6 with yerrorlines lw 2 pt 7 ps 0.8 lc rgb '#e69f00' title 'selective-backprop'
unset multiplot
