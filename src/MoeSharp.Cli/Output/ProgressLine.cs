using System.Diagnostics;
using System.Globalization;
using MoeSharp.Cli.Commands;

namespace MoeSharp.Cli.Output;

/// <summary>
/// Progress of a long run on stderr, so stdout (tables, JSON) stays parseable: on a terminal one line redrawn in place
/// at most five times a second; otherwise (a log, a pipe, under MPI) a plain line at most every
/// <see cref="PlainInterval"/>, so short runs print nothing extra.
/// </summary>
internal sealed class ProgressLine
{
    /// <summary>How often a plain (non-terminal) progress line is written.</summary>
    public static readonly TimeSpan PlainInterval = TimeSpan.FromSeconds(10);

    private static readonly TimeSpan RedrawInterval = TimeSpan.FromMilliseconds(200);

    private readonly string _what;
    private readonly TextWriter _error;
    private readonly bool _inPlace;
    private readonly long _started = Stopwatch.GetTimestamp();
    private readonly Lock _gate = new();
    private TimeSpan _lastWritten;
    private bool _drawn;
    private bool _everDrawn;

    /// <summary>Progress of <paramref name="what"/> (e.g. <c>train</c>) on <paramref name="error"/>.</summary>
    /// <param name="what">Leads every line.</param>
    /// <param name="error">Where to write (stderr).</param>
    /// <param name="inPlace">Redraw one line (a terminal) or write plain lines now and then.</param>
    public ProgressLine(string what, TextWriter error, bool inPlace)
    {
        _what = what;
        _error = error;
        _inPlace = inPlace;
    }

    /// <summary>Progress on this process's stderr, redrawn in place only on a terminal outside MPI.</summary>
    public static ProgressLine ForStderr(string what) =>
        new(what, Console.Error, !Console.IsErrorRedirected && !MpiJob.IsLaunched);

    /// <summary>
    /// Reports <paramref name="done"/> of <paramref name="total"/> units (<paramref name="unit"/>, e.g. <c>steps</c>).
    /// Any thread.
    /// </summary>
    public void Report(long done, long total, string unit)
    {
        lock (_gate)
        {
            TimeSpan elapsed = Stopwatch.GetElapsedTime(_started);
            TimeSpan interval = _inPlace ? RedrawInterval : PlainInterval;
            bool last = done >= total;
            // On a terminal the first report draws at once (the run has started); later ones at most every interval.
            bool due = (_inPlace && !_everDrawn) || elapsed - _lastWritten >= interval;
            if (!due && !(last && _drawn))
                return;
            _everDrawn = true;
            _lastWritten = elapsed;
            string left =
                done > 0 && !last
                    ? string.Create(
                        CultureInfo.InvariantCulture,
                        $", about {elapsed.TotalSeconds * (total - done) / done:F0} s left"
                    )
                    : "";
            string line = string.Create(
                CultureInfo.InvariantCulture,
                $"{_what}: {done}/{total} {unit}, {elapsed.TotalSeconds:F0} s{left}"
            );
            if (_inPlace)
            {
                _error.Write("\r" + line.PadRight(60) + (last ? "\n" : ""));
                _drawn = !last;
            }
            else
            {
                _error.WriteLine(line);
            }
            _error.Flush();
        }
    }

    /// <summary>Ends a line redrawn in place, so what follows starts on a fresh line.</summary>
    public void Finish()
    {
        lock (_gate)
        {
            if (!_drawn)
                return;
            _error.WriteLine();
            _drawn = false;
        }
    }
}
