using System.Globalization;
using MoeSharp.Cli.Faults;
using MoeSharp.Tensors;
using MoeSharp.Training;

namespace MoeSharp.Cli.Training;

/// <summary>
/// Tells a diverged run from a bug: the batch is drawn in [-1, 1) and a checkpoint resumed from is checked to hold
/// finite values (<see cref="RankCheckpointReader"/>), so a non-finite loss, or a step that fails on non-finite
/// routing scores after weights that are no longer finite, can only come from the optimizer's steps, which the
/// learning rate sizes. The error names <c>--lr</c> instead of the layer's input check that happened to see it.
/// </summary>
internal static class Divergence
{
    /// <summary>The first parameter holding a NaN or an infinity, or null. Copies device parameters to the host: for
    /// the failure path only.</summary>
    public static string? NonFiniteParameter(IEnumerable<Parameter> parameters)
    {
        foreach (Parameter p in parameters)
        {
            if (p.Value.DType != DType.Float32)
                continue;
            ReadOnlySpan<float> values = p.Value.ToHost().AsSpan<float>();
            if (NonFiniteValues.IndexOfFirst(values) >= 0)
                return p.Name;
        }
        return null;
    }

    /// <summary>The exit-2 error of a run that diverged at <paramref name="step"/>.</summary>
    public static ArgumentException Error(float learningRate, int step, string what) =>
        new(
            string.Create(
                CultureInfo.InvariantCulture,
                $"--lr {learningRate}: training diverged at step {step} ({what}); try a smaller --lr"
            )
        );
}
