# redraw with: gnuplot accuracy.gp (in this folder)
set terminal pngcairo size 1000,600 font ',10'
set output 'accuracy.png'
set title 'final test accuracy (mean over seeds, 95% interval)' noenhanced
set ylabel 'test accuracy'
set grid ytics
set style fill solid 0.6 border -1
set boxwidth 0.6
set xtics noenhanced rotate by -20
set key top left noenhanced
set xrange [-0.7:0.7]
set yrange [0.746163:0.768774]
plot 'accuracy.dat' using 1:3:xtic(2) with boxes lc rgb '#4477aa' title 'mean over seeds', \
  '' using 1:3:4:5 with yerrorbars lc rgb 'black' pt 7 ps 0.5 title '95% interval'
set terminal svg size 1000,600 font ',10'
set output 'accuracy.svg'
replot
