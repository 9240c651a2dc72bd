using MoeSharp.Tensors;

namespace MoeSharp.Collectives;

/// <summary>
/// The argument checks every group's tensor collectives share, so a tensor in the wrong place or of the wrong dtype
/// gets the same message whichever group it reaches.
/// </summary>
internal static class CollectiveTensorChecks
{
    /// <summary>
    /// The error for a tensor on memory <paramref name="group"/> cannot reach, e.g. <c>rank 1: send Tensor(Float32,
    /// [8]) lives on cuda:0, but InProcessProcessGroup(rank 1 of 2, world) exchanges host tensors only</c>.
    /// </summary>
    /// <param name="group">The group that was given the tensor (named through its <c>ToString</c>).</param>
    /// <param name="tensor">The tensor.</param>
    /// <param name="argument">The parameter that held it.</param>
    /// <param name="reach">What the group exchanges, completing "exchanges … only", e.g. <c>host tensors</c>.</param>
    /// <param name="hint">What to do instead, appended after a semicolon; none when null.</param>
    public static ArgumentException Unreachable(
        IProcessGroup group,
        Tensor tensor,
        string argument,
        string reach,
        string? hint = null
    ) =>
        new(
            $"rank {WorldRank(group)}: {argument} {tensor} lives on {tensor.Device}, "
                + $"but {group} exchanges {reach} only{(hint is null ? "" : "; " + hint)}",
            argument
        );

    /// <summary>Throws <see cref="Unreachable"/> unless <paramref name="tensor"/> is in host memory.</summary>
    public static void RequireHost(IProcessGroup group, Tensor tensor, string argument)
    {
        ArgumentNullException.ThrowIfNull(tensor, argument);
        if (!tensor.IsOnHost)
        {
            throw Unreachable(
                group,
                tensor,
                argument,
                "host tensors",
                "device tensors go through a device group (NCCL's, or a HostStagedProcessGroup over this one)"
            );
        }
    }

    /// <summary>Throws unless an all-to-all-v's two tensors have one dtype.</summary>
    public static void RequireSameDType(IProcessGroup group, Tensor send, Tensor receive)
    {
        ArgumentNullException.ThrowIfNull(send);
        ArgumentNullException.ThrowIfNull(receive);
        if (send.DType != receive.DType)
        {
            throw new ArgumentException(
                $"rank {WorldRank(group)}: send is {send.DType} but receive is {receive.DType}; "
                    + "an exchange moves one dtype",
                nameof(receive)
            );
        }
    }

    /// <summary>Throws unless <paramref name="values"/> is float32 or bfloat16, what the ordered sum takes.</summary>
    public static void RequireSummable(IProcessGroup group, Tensor values)
    {
        ArgumentNullException.ThrowIfNull(values);
        if (values.DType is not (DType.Float32 or DType.BFloat16))
        {
            throw new ArgumentException(
                $"rank {WorldRank(group)}: the rank-ordered all-reduce sums float32 or bfloat16 tensors, not {values}",
                nameof(values)
            );
        }
    }

    private static int WorldRank(IProcessGroup group) => group.WorldRanks[group.Rank];
}
