using MoeSharp.Cli.Output;

namespace MoeSharp.Cli.Training;

/// <summary>Writes a loss curve as a PNG with ScottPlot (SkiaSharp, headless).</summary>
internal static class LossPlot
{
    /// <summary>
    /// Plots loss against step to <paramref name="path"/> (800×500) on a logarithmic loss axis: the loss falls by
    /// orders of magnitude, and a linear axis flattens everything after the first steps. Losses that are not
    /// positive and finite (a log cannot show them) are left out. The file is replaced whole or not at all
    /// (<see cref="OutputPaths.ReplaceWhole"/>).
    /// </summary>
    /// <param name="path">PNG file.</param>
    /// <param name="losses">The loss of every step from <paramref name="firstStep"/> on.</param>
    /// <param name="title">Plot title.</param>
    /// <param name="firstStep">The step of <c>losses[0]</c> (a resumed run starts after its checkpoint).</param>
    public static void Save(string path, IReadOnlyList<double> losses, string title, int firstStep = 1)
    {
        var plot = new ScottPlot.Plot();
        var shown = losses
            .Select((loss, i) => (Step: (double)(firstStep + i), Loss: loss))
            .Where(p => p.Loss > 0 && double.IsFinite(p.Loss))
            .ToArray();
        var line = plot.Add.Scatter(
            shown.Select(p => p.Step).ToArray(),
            shown.Select(p => Math.Log10(p.Loss)).ToArray()
        );
        line.MarkerSize = 0;
        // ScottPlot 5 draws a log axis as log10 of the data with ticks labelled by the values they stand for: powers
        // of ten with log-spaced minor ticks when the curve spans a decade or more, finer labelled ticks otherwise.
        double[] logs = shown.Select(p => Math.Log10(p.Loss)).ToArray();
        bool decades = logs.Length > 0 && logs.Max() - logs.Min() >= 1;
        var ticks = new ScottPlot.TickGenerators.NumericAutomatic
        {
            LabelFormatter = y => Math.Pow(10, y).ToString("G3", System.Globalization.CultureInfo.InvariantCulture),
            IntegerTicksOnly = decades,
        };
        if (decades)
            ticks.MinorTickGenerator = new ScottPlot.TickGenerators.LogMinorTickGenerator();
        plot.Axes.Left.TickGenerator = ticks;
        plot.Title(title);
        plot.XLabel("step");
        plot.YLabel("MSE loss (log scale)");
        // Whole or not at all: a full disk must not leave a truncated PNG where an old plot (or none) was.
        OutputPaths.ReplaceWhole(path, temporary => plot.SavePng(temporary, 800, 500));
    }
}
