namespace MoeSharp.Cli.Soak;

/// <summary>The tally of a soak: its last line, and its exit code (0 only with no hang and no wrong result).</summary>
internal sealed class SoakTally
{
    /// <summary>Runs finished.</summary>
    public int Runs { get; set; }

    /// <summary>Runs in which a fault was injected.</summary>
    public int Faulted { get; set; }

    /// <summary>Runs in which some rank did not end within the timeout + 2 s.</summary>
    public int Hangs { get; set; }

    /// <summary>
    /// Runs that ended wrongly: a fault-free run not bitwise equal to the reference (or failing at all), or a faulted
    /// run that succeeded or failed without naming the culprit rank.
    /// </summary>
    public int Wrong { get; set; }

    /// <summary><c>soak: R runs (F with an injected fault), H hangs, W wrong results</c>.</summary>
    public override string ToString() =>
        $"soak: {Runs} runs ({Faulted} with an injected fault), {Hangs} hangs, {Wrong} wrong results";
}
