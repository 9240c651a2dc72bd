namespace MoeSharp.Cli.Training;

/// <summary>How <c>moe train</c> draws each step's batch (<c>--batch</c>), a function of the seed and step.</summary>
internal enum BatchSource
{
    /// <summary>
    /// <c>System.Random</c> seeded from the seed and the step, drawn row after row on the host (the host's default;
    /// the batches of every earlier release).
    /// </summary>
    Sequential,

    /// <summary>
    /// A counter-based generator (<c>CounterUniform</c>): every element a hash of seed, step and its index, so a device
    /// draws its rows in place (the default with <c>--device</c>); the host computes the same bits.
    /// </summary>
    Counter,
}
