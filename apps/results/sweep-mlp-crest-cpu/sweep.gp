set terminal pngcairo size 1400,560 font ',11'
set output 'apps/results/sweep-mlp-crest-cpu/sweep.png'
set multiplot layout 1,2 title "mlp on fashion-mnist, 3 seeds (mean ± sd), lr schedule time"
set grid
set key top right
set logscale x
set xrange [4:25]
set xtics ('5' 5, '10' 10, '20' 20)
set xlabel 'training time budget (s, log scale)'
set ylabel 'test error (%), final evaluation'
set offsets 0, 0, graph 0.04, graph 0.04
plot 'apps/results/sweep-mlp-crest-cpu/sweep.dat' index 0 using ($1*0.989065):2:3 with yerrorlines lw 2 pt 7 ps 0.8 lc rgb '#9400d3' title 'uniform', 'apps/results/sweep-mlp-crest-cpu/sweep.dat' index 1 using ($1*1.01106):2:3 with yerrorlines lw 2 pt 7 ps 0.8 lc rgb '#009e73' title 'crest'
set ylabel 'training loss (10k subset), final evaluation'
set logscale y
set yrange [0.0912298:0.505027]
set ytics (0.1, 0.12, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5)
plot 'apps/results/sweep-mlp-crest-cpu/sweep.dat' index 0 using ($1*0.989065):4:5:6 with yerrorlines lw 2 pt 7 ps 0.8 lc rgb '#9400d3' title 'uniform', 'apps/results/sweep-mlp-crest-cpu/sweep.dat' index 1 using ($1*1.01106):4:5:6 with yerrorlines lw 2 pt 7 ps 0.8 lc rgb '#009e73' title 'crest'
unset multiplot
