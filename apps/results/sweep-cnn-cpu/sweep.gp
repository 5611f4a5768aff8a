set terminal pngcairo size 1400,560 font ',11'
set output 'apps/results/sweep-cnn-cpu/sweep.png'
set multiplot layout 1,2 title "cnn on fashion-mnist, 3 seeds (mean ± sd), lr schedule time"
set grid
set key top right
set logscale x
set xrange [12:75]
set xtics ('15' 15, '30' 30, '60' 60)
set xlabel 'training time budget (s, log scale)'
set ylabel 'test error (%), final evaluation'
set offsets 0, 0, graph 0.04, graph 0.04
plot 'apps/results/sweep-cnn-cpu/sweep.dat' index 0 using ($1*0.915794):2:3 with yerrorlines lw 2 pt 7 ps 0.8 lc rgb '#9400d3' title 'uniform', 'apps/results/sweep-cnn-cpu/sweep.dat' index 1 using ($1*0.936156):2:3 with yerrorlines lw 2 pt 7 ps 0.8 lc rgb '#009e73' title 'upper-bound', 'apps/results/sweep-cnn-cpu/sweep.dat' index 2 using ($1*0.956971):2:3 with yerrorlines lw 2 pt 7 ps 0.8 lc rgb '#56b4e9' title 'upper-bound-history', 'apps/results/sweep-cnn-cpu/sweep.dat' index 3 using ($1*0.978249):2:3 with yerrorlines lw 2 pt 7 ps 0.8 lc rgb '#e69f00' title 'loss-history', 'apps/results/sweep-cnn-cpu/sweep.dat' index 4 using ($1*1):2:3 with yerrorlines lw 2 pt 7 ps 0.8 lc rgb '#f0e442' title 'infobatch', 'apps/results/sweep-cnn-cpu/sweep.dat' index 5 using ($1*1.02223):2:3 with yerrorlines lw 2 pt 7 ps 0.8 lc rgb '#0072b2' title 'selective-backprop', 'apps/results/sweep-cnn-cpu/sweep.dat' index 6 using ($1*1.04496):2:3 with yerrorlines lw 2 pt 7 ps 0.8 lc rgb '#e51e10' title 'selective-backprop-stale', 'apps/results/sweep-cnn-cpu/sweep.dat' index 7 using ($1*1.0682):2:3 with yerrorlines lw 2 pt 7 ps 0.8 lc rgb '#000000' title 'srs', 'apps/results/sweep-cnn-cpu/sweep.dat' index 8 using ($1*1.09195):2:3 with yerrorlines lw 2 pt 7 ps 0.8 lc rgb '#8c564b' title 'crest'
set ylabel 'training loss (10k subset), final evaluation'
set logscale y
set yrange [0.265728:1.09287]
set ytics (0.3, 0.4, 0.5, 0.6, 0.8, 1)
plot 'apps/results/sweep-cnn-cpu/sweep.dat' index 0 using ($1*0.915794):4:5:6 with yerrorlines lw 2 pt 7 ps 0.8 lc rgb '#9400d3' title 'uniform', 'apps/results/sweep-cnn-cpu/sweep.dat' index 1 using ($1*0.936156):4:5:6 with yerrorlines lw 2 pt 7 ps 0.8 lc rgb '#009e73' title 'upper-bound', 'apps/results/sweep-cnn-cpu/sweep.dat' index 2 using ($1*0.956971):4:5:6 with yerrorlines lw 2 pt 7 ps 0.8 lc rgb '#56b4e9' title 'upper-bound-history', 'apps/results/sweep-cnn-cpu/sweep.dat' index 3 using ($1*0.978249):4:5:6 with yerrorlines lw 2 pt 7 ps 0.8 lc rgb '#e69f00' title 'loss-history', 'apps/results/sweep-cnn-cpu/sweep.dat' index 4 using ($1*1):4:5:6 with yerrorlines lw 2 pt 7 ps 0.8 lc rgb '#f0e442' title 'infobatch', 'apps/results/sweep-cnn-cpu/sweep.dat' index 5 using ($1*1.02223):4:5:6 with yerrorlines lw 2 pt 7 ps 0.8 lc rgb '#0072b2' title 'selective-backprop', 'apps/results/sweep-cnn-cpu/sweep.dat' index 6 using ($1*1.04496):4:5:6 with yerrorlines lw 2 pt 7 ps 0.8 lc rgb '#e51e10' title 'selective-backprop-stale', 'apps/results/sweep-cnn-cpu/sweep.dat' index 7 using ($1*1.0682):4:5:6 with yerrorlines lw 2 pt 7 ps 0.8 lc rgb '#000000' title 'srs', 'apps/results/sweep-cnn-cpu/sweep.dat' index 8 using ($1*1.09195):4:5:6 with yerrorlines lw 2 pt 7 ps 0.8 lc rgb '#8c564b' title 'crest'
unset multiplot
