set terminal pngcairo size 1400,560 font ',11'
set output 'apps/results/sweep-cnn-long-cpu/sweep.png'
set multiplot layout 1,2 title "cnn on fashion-mnist, 3 seeds (mean ± sd), lr schedule time"
set grid
set key top right
set logscale x
set xrange [48:300]
set xtics ('60' 60, '120' 120, '240' 240)
set xlabel 'training time budget (s, log scale)'
set ylabel 'test error (%), final evaluation'
set offsets 0, 0, graph 0.04, graph 0.04
plot 'apps/results/sweep-cnn-long-cpu/sweep.dat' index 0 using ($1*0.956971):2:3 with yerrorlines lw 2 pt 7 ps 0.8 lc rgb '#9400d3' title 'uniform', 'apps/results/sweep-cnn-long-cpu/sweep.dat' index 1 using ($1*0.978249):2:3 with yerrorlines lw 2 pt 7 ps 0.8 lc rgb '#009e73' title 'upper-bound-history', 'apps/results/sweep-cnn-long-cpu/sweep.dat' index 2 using ($1*1):2:3 with yerrorlines lw 2 pt 7 ps 0.8 lc rgb '#56b4e9' title 'loss-history', 'apps/results/sweep-cnn-long-cpu/sweep.dat' index 3 using ($1*1.02223):2:3 with yerrorlines lw 2 pt 7 ps 0.8 lc rgb '#e69f00' title 'infobatch', 'apps/results/sweep-cnn-long-cpu/sweep.dat' index 4 using ($1*1.04496):2:3 with yerrorlines lw 2 pt 7 ps 0.8 lc rgb '#f0e442' title 'selective-backprop-stale'
set ylabel 'training loss (10k subset), final evaluation'
set logscale y
set yrange [0.110244:0.298322]
set ytics (0.12, 0.15, 0.2, 0.25)
plot 'apps/results/sweep-cnn-long-cpu/sweep.dat' index 0 using ($1*0.956971):4:5:6 with yerrorlines lw 2 pt 7 ps 0.8 lc rgb '#9400d3' title 'uniform', 'apps/results/sweep-cnn-long-cpu/sweep.dat' index 1 using ($1*0.978249):4:5:6 with yerrorlines lw 2 pt 7 ps 0.8 lc rgb '#009e73' title 'upper-bound-history', 'apps/results/sweep-cnn-long-cpu/sweep.dat' index 2 using ($1*1):4:5:6 with yerrorlines lw 2 pt 7 ps 0.8 lc rgb '#56b4e9' title 'loss-history', 'apps/results/sweep-cnn-long-cpu/sweep.dat' index 3 using ($1*1.02223):4:5:6 with yerrorlines lw 2 pt 7 ps 0.8 lc rgb '#e69f00' title 'infobatch', 'apps/results/sweep-cnn-long-cpu/sweep.dat' index 4 using ($1*1.04496):4:5:6 with yerrorlines lw 2 pt 7 ps 0.8 lc rgb '#f0e442' title 'selective-backprop-stale'
unset multiplot
