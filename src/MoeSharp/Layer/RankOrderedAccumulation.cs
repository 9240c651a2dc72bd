using MoeSharp.Collectives;
using MoeSharp.Compute;
using MoeSharp.Tensors;

namespace MoeSharp.Layer;

/// <summary>
/// Sums per-token contributions to weight gradients over the ranks so the bits do not depend on how tokens
/// are split: the host GEMM reduces over tokens as one FMA chain per element in ascending token order, so
/// rank 0 starts the chain on its tokens, hands the running values to rank 1, which continues it on its own
/// tokens, and so on; the last rank's values are then given to everyone. Ranks hold consecutive token
/// blocks in rank order (SP shards inside a data-parallel group, groups in rank order), so the result is the
/// bits of one rank running all tokens.
/// </summary>
/// <remarks>
/// The chain serializes the weight-gradient GEMMs over the ranks; they are the small part of the layer
/// (router gate and shared expert). A chain started from +0 never yields −0, so the final broadcast, a
/// rank-order sum with zeros from every other rank, changes no bit.
/// Which of the two the backend gets is its GEMM's to say (<see cref="IGemmKernels.ContinuesReductionChain"/>): on a
/// device backend the GEMMs follow the BLAS library's blocking, so there is no chain to continue: each
/// rank accumulates its own tokens from zero and the ranks' results are summed (an all-reduce on the device
/// group), which agrees with the host within float32 tolerance.
/// </remarks>
internal static class RankOrderedAccumulation
{
    /// <summary>
    /// Collective over <paramref name="world"/> (null: a single rank). Zeroes <paramref name="accumulators"/>,
    /// runs <paramref name="accumulateLocal"/> on each rank in rank order (each continuing from the previous
    /// rank's values) and leaves the final values in every rank's <paramref name="accumulators"/>.
    /// </summary>
    public static void Run(IProcessGroup? world, IReadOnlyList<Tensor> accumulators, Action accumulateLocal) =>
        Run(world, null, accumulators, accumulateLocal);

    /// <summary>
    /// <see cref="Run(IProcessGroup?, IReadOnlyList{Tensor}, Action)"/> on the tensors of <paramref name="kernels"/>'
    /// backend: the chain over the ranks when the backend is null (the host) or its GEMM continues a reduction chain
    /// (<see cref="IGemmKernels.ContinuesReductionChain"/>), otherwise local accumulation and a sum over the ranks.
    /// </summary>
    public static void Run(
        IProcessGroup? world,
        ILayerKernels? kernels,
        IReadOnlyList<Tensor> accumulators,
        Action accumulateLocal
    )
    {
        if (kernels is not null && !kernels.Gemm.ContinuesReductionChain)
        {
            RunOnDevice(world, kernels, accumulators, accumulateLocal);
            return;
        }
        foreach (Tensor t in accumulators)
            t.AsSpan<float>().Clear();
        if (world is null || world.Size == 1)
        {
            accumulateLocal();
            return;
        }

        int size = world.Size,
            rank = world.Rank;
        int total = 0;
        foreach (Tensor t in accumulators)
            total += t.ElementCount;
        var buffer = new float[total];
        var sendCounts = new int[size];
        var receiveCounts = new int[size];
        for (int step = 0; step < size; step++)
        {
            if (rank == step)
                accumulateLocal();
            if (step == size - 1)
                break;

            // Point-to-point from rank `step` to rank `step + 1`, as an all-to-all-v every rank joins.
            Array.Clear(sendCounts);
            Array.Clear(receiveCounts);
            bool sends = rank == step,
                receives = rank == step + 1;
            if (sends)
            {
                sendCounts[step + 1] = total;
                Pack(accumulators, buffer);
            }
            if (receives)
                receiveCounts[step] = total;
            world.AllToAllV<float>(sends ? buffer : [], sendCounts, receives ? buffer : [], receiveCounts);
            if (receives)
                Unpack(buffer, accumulators);
        }

        if (rank == size - 1)
            Pack(accumulators, buffer);
        else
            Array.Clear(buffer);
        world.AllReduceSum(buffer.AsSpan());
        Unpack(buffer, accumulators);
    }

    private static void RunOnDevice(
        IProcessGroup? world,
        ILayerKernels kernels,
        IReadOnlyList<Tensor> accumulators,
        Action accumulateLocal
    )
    {
        foreach (Tensor t in accumulators)
            kernels.Dispatch.Rows.Clear(t);
        accumulateLocal();
        if (world is null || world.Size == 1)
            return;
        foreach (Tensor t in accumulators)
            world.AllReduceSum(t);
    }

    private static void Pack(IReadOnlyList<Tensor> tensors, float[] buffer)
    {
        int offset = 0;
        foreach (Tensor t in tensors)
        {
            t.AsSpan<float>().CopyTo(buffer.AsSpan(offset));
            offset += t.ElementCount;
        }
    }

    private static void Unpack(float[] buffer, IReadOnlyList<Tensor> tensors)
    {
        int offset = 0;
        foreach (Tensor t in tensors)
        {
            buffer.AsSpan(offset, t.ElementCount).CopyTo(t.AsSpan<float>());
            offset += t.ElementCount;
        }
    }
}
