using System.Globalization;
using MoeSharp.Cli.Commands;
using MoeSharp.Collectives;
using MoeSharp.Dispatch;
using MoeSharp.Layer;
using MoeSharp.Tensors;
using MoeSharp.Verification;
using Spectre.Console;

namespace MoeSharp.Cli.Faults;

/// <summary>
/// Each command's memory estimate, checked at validation before any rank starts or anything is allocated: one line
/// such as <c>needs 41.2 GB of host memory per process, 22.8 GB available (--tokens 1000000 --dim 1024)</c>, exit 2.
/// In-process ranks share the process, so their estimates add up; an MPI process holds one rank.
/// </summary>
internal static class CommandMemory
{
    /// <summary>The in-process world limit, naming the option.</summary>
    public static ValidationResult InProcessRanks(int? world, string? comm, string option = "--world")
    {
        if (world is int w && w > InProcessWorld.MaxRanks && comm is null or "inproc")
        {
            return ValidationResult.Error(
                $"{option} {w} exceeds the {InProcessWorld.MaxRanks} in-process ranks this tool runs "
                    + "(one thread each); run more ranks with --comm mpi"
            );
        }
        return ValidationResult.Success();
    }

    /// <summary><c>moe run</c>: every rank's dispatch round, the group inputs and the single-rank reference.</summary>
    public static ValidationResult Run(RunCase c, bool inProcess, ComputeOptions compute)
    {
        var config = new TokenDispatcherConfig(Math.Max(1, c.Experts), Math.Max(1, c.TopK))
        {
            Layout = c.Layout,
            ExpertAlignment = c.Align,
            WireFormat = c.Wire,
        };
        string options = Describe(
            ("--world", c.World),
            ("--sp", c.Sp),
            ("--tokens", c.Tokens),
            ("--dim", c.Dim),
            ("--experts", c.Experts),
            ("--align", c.Align)
        );
        long perRank = DispatchMemoryEstimate.BytesPerRank(config, c.World, c.Sp, c.Tokens, c.Dim, c.RowType);
        long reference = DispatchMemoryEstimate.BytesPerRank(
            config with
            {
                ExpertAlignment = 1,
            },
            1,
            1,
            c.Tokens,
            c.Dim,
            c.RowType
        );
        long bytesPerToken = (long)c.Dim * c.RowType.SizeOf() + 8L * c.TopK;
        long inputs = MemoryBudget.Multiply(MemoryBudget.Multiply(c.Tokens, bytesPerToken), c.World / c.Sp);
        long largest = DispatchMemoryEstimate.LargestTensorElements(config, c.World, c.Sp, c.Tokens, c.Dim);
        return Check(inProcess ? c.World : 1, perRank, Add(inputs, reference), largest, compute, options);
    }

    /// <summary>
    /// <c>moe bench</c>: every rank's dispatch round on its own tokens, once per dispatcher the rank holds at the same
    /// time (<paramref name="dispatchers"/>; the wire benchmark's native and FP8 pair is two).
    /// </summary>
    public static ValidationResult Bench(
        BenchShape shape,
        int world,
        bool inProcess,
        ComputeOptions compute,
        int dispatchers = 1
    )
    {
        var config = new TokenDispatcherConfig(Math.Max(1, shape.Experts), Math.Max(1, shape.TopK));
        string options = Describe(
            ("--world", world),
            ("--tokens", shape.Tokens),
            ("--dim", shape.Dim),
            ("--experts", shape.Experts)
        );
        long perRank = MemoryBudget.Multiply(
            DispatchMemoryEstimate.BytesPerRank(config, world, 1, shape.Tokens, shape.Dim, shape.RowType),
            dispatchers
        );
        long largest = DispatchMemoryEstimate.LargestTensorElements(config, world, 1, shape.Tokens, shape.Dim);
        return Check(inProcess ? world : 1, perRank, 0, largest, compute, options);
    }

    /// <summary>
    /// <c>moe train</c>: the global batch (generated whole on every step), and per rank the layer's rows in the
    /// forward and backward (routed rows of width D and 2H), the experts' weights, their gradients and AdamW's two
    /// moments.
    /// </summary>
    public static ValidationResult Train(
        int world,
        int sp,
        int tokens,
        int dim,
        int hidden,
        int experts,
        int topK,
        int sharedHidden,
        bool inProcess,
        ComputeOptions compute
    )
    {
        string options = Describe(
            ("--world", world),
            ("--sp", sp),
            ("--tokens", tokens),
            ("--dim", dim),
            ("--hidden", hidden),
            ("--experts", experts)
        );
        long groups = Math.Max(1, world / Math.Max(1, sp));
        long groupTokens = (tokens + groups - 1) / groups;
        long entries = MemoryBudget.Multiply((groupTokens + sp - 1) / Math.Max(1, sp), topK);
        long rowWidth = 6L * dim + 6L * hidden;
        long rows = Add(MemoryBudget.Multiply(entries, rowWidth), MemoryBudget.Multiply(groupTokens, 8L * dim));
        long perRank = MemoryBudget.Multiply(rows, 4);
        // The layer's weights, gradients and AdamW moments: the library's own estimate (the layer checks it too).
        var layer = new MoeLayerArgs(dim, hidden, experts, topK) { SharedHidden = sharedHidden };
        int localExperts = Math.Max(1, experts / Math.Max(1, world));
        perRank = Add(perRank, MoeLayerMemoryEstimate.TrainingBytesPerRank(layer, localExperts));
        long batch = MemoryBudget.Multiply(tokens, 4L * (dim + 2));
        long largest = Math.Max(
            MemoryBudget.Multiply(tokens, dim),
            MemoryBudget.Multiply(entries, 2L * Math.Max(dim, hidden))
        );
        largest = Math.Max(largest, MoeLayerMemoryEstimate.LargestTensorElements(layer, localExperts));
        return Check(inProcess ? world : 1, perRank, batch, largest, compute, options);
    }

    private static ValidationResult Check(
        int ranksInProcess,
        long perRank,
        long shared,
        long largestTensor,
        ComputeOptions compute,
        string options
    )
    {
        if (largestTensor > MemoryBudget.MaxTensorElements)
        {
            return ValidationResult.Error(
                string.Create(
                    CultureInfo.InvariantCulture,
                    $"needs a tensor of {largestTensor} elements, more than the {MemoryBudget.MaxTensorElements} one tensor can index ({options})"
                )
            );
        }
        // On CUDA the rows live in device memory (checked against GPU 0's free memory when a GPU answers); ILGPU's CPU
        // accelerator allocates host memory.
        if (compute.Device == DeviceKind.Cuda && DeviceMemory.Query() is GpuMemory gpu)
        {
            ValidationResult device = DeviceMemory.Decide(
                perRank,
                ranksInProcess,
                compute.Gpus > 0 ? compute.Gpus : gpu.Gpus,
                gpu.FreeBytes,
                options
            );
            if (!device.Successful)
                return device;
        }
        long host =
            compute.Device == DeviceKind.Cuda ? shared : Add(MemoryBudget.Multiply(perRank, ranksInProcess), shared);
        long available = MemoryBudget.AvailableHostBytes();
        if (host > available)
        {
            return ValidationResult.Error(
                $"needs {MemoryBudget.FormatBytes(host)} of host memory per process, "
                    + $"{MemoryBudget.FormatBytes(available)} available ({options})"
            );
        }
        return ValidationResult.Success();
    }

    private static string Describe(params (string Option, long Value)[] options) =>
        string.Join(' ', options.Select(o => string.Create(CultureInfo.InvariantCulture, $"{o.Option} {o.Value}")));

    private static long Add(long a, long b) => a > long.MaxValue - b ? long.MaxValue : a + b;
}
