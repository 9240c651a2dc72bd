namespace MoeSharp.Cli.Faults;

/// <summary>
/// The options of <c>moe train</c> that its memory estimate depends on (<see cref="CommandMemory.Train"/>).
/// </summary>
/// <param name="World">Ranks (1 when not given).</param>
/// <param name="Sp">SP size.</param>
/// <param name="Tokens">Tokens of the global batch.</param>
/// <param name="Dim">D.</param>
/// <param name="Hidden">H of a routed expert.</param>
/// <param name="Experts">E, all routed experts.</param>
/// <param name="TopK">K.</param>
/// <param name="SharedHidden">H of the shared expert (0 for none).</param>
/// <param name="Load"><c>--load</c>'s directory, or null.</param>
/// <param name="Save"><c>--save</c>'s directory, or null.</param>
internal sealed record TrainShape(
    int World,
    int Sp,
    int Tokens,
    int Dim,
    int Hidden,
    int Experts,
    int TopK,
    int SharedHidden,
    string? Load,
    string? Save
);
