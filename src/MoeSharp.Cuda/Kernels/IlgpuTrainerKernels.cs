using System.Numerics;
using ILGPU;
using ILGPU.Runtime;
using MoeSharp.Cuda.Memory;
using MoeSharp.Tensors;

namespace MoeSharp.Cuda.Kernels;

/// <summary>
/// <c>moe train</c>'s per-step work besides the layer, on an ILGPU accelerator, so that no step moves [T, D] data
/// between host and device: the batch (<see cref="CounterUniform"/>), the teacher's targets, the regression head's
/// prediction, error and gradients. Row kernels run one group per row and reduce in a fixed tree; the head gradient
/// sums fixed chunks of rows, then the chunks in order: results are the same from run to run.
/// </summary>
/// <remarks>
/// Tolerance against the host trainer's arithmetic (float32 GEMM sums, <c>Math.Tanh</c>): the batch is bitwise the
/// host's <see cref="CounterUniform"/>; dot products are float64 sums of exact products rounded once, so they are at
/// least as accurate as the host's float32 sums; tanh comes from float32 <c>exp</c> (a few 1e-7 absolute).
/// </remarks>
internal sealed class IlgpuTrainerKernels : IDisposable
{
    /// <summary>The row kernels' group size off CUDA.</summary>
    private const int CpuGroupSize = 4;

    /// <summary>Rows per partial sum of the head gradient.</summary>
    private const int HeadChunk = 64;

    private readonly IlgpuTensorAllocator _allocator;
    private readonly int _group;
    private readonly Action<Index1D, ArrayView<float>, ulong, long> _batch;
    private readonly Action<
        KernelConfig,
        ArrayView<float>,
        ArrayView<float>,
        ArrayView<float>,
        int,
        ArrayView<float>
    > _teacher;
    private readonly Action<
        KernelConfig,
        ArrayView<float>,
        ArrayView<float>,
        ArrayView<float>,
        int,
        float,
        int,
        int,
        ArrayView<float>,
        ArrayView<float>,
        ArrayView<float>
    > _loss;
    private readonly Action<
        Index1D,
        ArrayView<float>,
        ArrayView<float>,
        int,
        int,
        int,
        int,
        ArrayView<double>
    > _headPartials;
    private readonly Action<Index1D, ArrayView<double>, int, int, ArrayView<float>, int> _headSum;
    private MemoryBuffer1D<double, Stride1D.Dense>? _partials;

    /// <summary>Compiles the kernels on <paramref name="allocator"/>'s accelerator.</summary>
    public IlgpuTrainerKernels(IlgpuTensorAllocator allocator)
    {
        _allocator = allocator ?? throw new ArgumentNullException(nameof(allocator));
        Accelerator acc = allocator.Accelerator;
        // A power of two for the reduction tree. ILGPU's CPU accelerator runs a group's threads in lockstep through
        // barriers, which cost far more than the arithmetic there: it gets small groups (the tree still has levels).
        int wanted = acc.AcceleratorType == AcceleratorType.Cuda ? TrainerKernelBodies.MaxGroupSize : CpuGroupSize;
        _group = (int)BitOperations.RoundUpToPowerOf2((uint)Math.Min(wanted, acc.MaxNumThreadsPerGroup) + 1) / 2;
        _batch = acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ulong, long>(
            TrainerKernelBodies.CounterBatch
        );
        _teacher = acc.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, int, ArrayView<float>>(
            TrainerKernelBodies.TeacherRows
        );
        _loss = acc.LoadStreamKernel<
            ArrayView<float>,
            ArrayView<float>,
            ArrayView<float>,
            int,
            float,
            int,
            int,
            ArrayView<float>,
            ArrayView<float>,
            ArrayView<float>
        >(TrainerKernelBodies.LossRows);
        _headPartials = acc.LoadAutoGroupedStreamKernel<
            Index1D,
            ArrayView<float>,
            ArrayView<float>,
            int,
            int,
            int,
            int,
            ArrayView<double>
        >(TrainerKernelBodies.HeadGradPartials);
        _headSum = acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<double>, int, int, ArrayView<float>, int>(
            TrainerKernelBodies.HeadGradSum
        );
    }

    /// <summary>
    /// Fills <paramref name="x"/> with elements <c>[first, first + x.ElementCount)</c> of the counter stream
    /// <paramref name="key"/> (<see cref="CounterUniform"/>).
    /// </summary>
    /// <param name="key">The stream, from <see cref="CounterUniform.StreamKey"/>.</param>
    /// <param name="first">The stream index of the first element (row start × D for a slice of a batch).</param>
    /// <param name="x">Output: float32 device tensor.</param>
    public void CounterBatch(ulong key, long first, Tensor x)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(first);
        ArrayView<float> view = DeviceViews.Floats(_allocator.Accelerator, x, nameof(x));
        if (x.ElementCount > 0)
            _batch(x.ElementCount, view, key, first);
    }

    /// <summary><c>target[r] = tanh(x_r·a) · (x_r·b)</c> for every row of <paramref name="x"/>.</summary>
    /// <param name="x">[R, D] float32.</param>
    /// <param name="a">[D] (any shape of D elements) float32.</param>
    /// <param name="b">[D] float32.</param>
    /// <param name="target">Output: R float32.</param>
    /// <exception cref="ArgumentException">The sizes disagree or a tensor is not on this device.</exception>
    public void Teacher(Tensor x, Tensor a, Tensor b, Tensor target)
    {
        Accelerator acc = _allocator.Accelerator;
        int rows = Rows(x, nameof(x)),
            d = x.RowLength;
        CheckCount(a, d, nameof(a));
        CheckCount(b, d, nameof(b));
        CheckCount(target, rows, nameof(target));
        ArrayView<float> xs = DeviceViews.Floats(acc, x, nameof(x));
        ArrayView<float> av = DeviceViews.Floats(acc, a, nameof(a));
        ArrayView<float> bv = DeviceViews.Floats(acc, b, nameof(b));
        ArrayView<float> tv = DeviceViews.Floats(acc, target, nameof(target));
        if (rows > 0)
            _teacher(new KernelConfig(rows, _group), xs, av, bv, d, tv);
    }

    /// <summary>
    /// The regression head's step on the layer's output: per row, the prediction <c>y_r·head</c>, its error against
    /// <paramref name="target"/>, <c>gradPred = scale · error</c> and <paramref name="gradY"/> = gradPred ⊗ head; into
    /// <paramref name="results"/> the errors of the own rows, then the head's gradient <c>Σ_own gradPred_r · y_r</c>.
    /// </summary>
    /// <param name="y">The layer's output, [R, D] float32.</param>
    /// <param name="head">The head's weight, D float32.</param>
    /// <param name="target">The teacher's targets, R float32.</param>
    /// <param name="scale">dL/dpred per unit error (2 / tokens for a mean squared error).</param>
    /// <param name="ownStart">The first row this rank owns (counts its loss and head gradient).</param>
    /// <param name="ownCount">How many rows it owns.</param>
    /// <param name="gradPred">Scratch: R float32.</param>
    /// <param name="gradY">Output: dL/dy, [R, D] float32.</param>
    /// <param name="results">Output: <c>ownCount + D</c> float32, the errors then the head gradient.</param>
    /// <exception cref="ArgumentException">The sizes disagree or a tensor is not on this device.</exception>
    public void Loss(
        Tensor y,
        Tensor head,
        Tensor target,
        float scale,
        int ownStart,
        int ownCount,
        Tensor gradPred,
        Tensor gradY,
        Tensor results
    )
    {
        Accelerator acc = _allocator.Accelerator;
        int rows = Rows(y, nameof(y)),
            d = y.RowLength;
        if (ownStart < 0 || ownCount < 0 || ownStart + ownCount > rows)
        {
            throw new ArgumentOutOfRangeException(
                nameof(ownCount),
                $"own rows [{ownStart}, {ownStart + ownCount}) are not within the {rows} rows of y"
            );
        }
        CheckCount(head, d, nameof(head));
        CheckCount(target, rows, nameof(target));
        CheckCount(gradPred, rows, nameof(gradPred));
        DeviceViews.SameCount(y, gradY, nameof(gradY));
        CheckCount(results, ownCount + d, nameof(results));
        ArrayView<float> yv = DeviceViews.Floats(acc, y, nameof(y));
        ArrayView<float> hv = DeviceViews.Floats(acc, head, nameof(head));
        ArrayView<float> tv = DeviceViews.Floats(acc, target, nameof(target));
        ArrayView<float> gp = DeviceViews.Floats(acc, gradPred, nameof(gradPred));
        ArrayView<float> gy = DeviceViews.Floats(acc, gradY, nameof(gradY));
        ArrayView<float> rv = DeviceViews.Floats(acc, results, nameof(results));
        if (rows > 0)
            _loss(new KernelConfig(rows, _group), yv, hv, tv, d, scale, ownStart, ownCount, gp, gy, rv);
        int chunks = (ownCount + HeadChunk - 1) / HeadChunk;
        ArrayView<double> partials = Partials((long)chunks * d);
        if (chunks > 0)
            _headPartials(chunks * d, yv, gp, d, ownStart, ownCount, HeadChunk, partials);
        if (d > 0)
            _headSum(d, partials, d, chunks, rv, ownCount);
    }

    /// <summary>Frees the head gradient's scratch.</summary>
    public void Dispose() => _partials?.Dispose();

    private ArrayView<double> Partials(long count)
    {
        if (_partials is null || _partials.Length < Math.Max(count, 1))
        {
            // Freeing waits for the device: only when the shapes grow, never in a steady run.
            _partials?.Dispose();
            _partials = _allocator.Accelerator.Allocate1D<double>(Math.Max(count, 1));
        }
        return _partials.View.SubView(0, Math.Max(count, 1));
    }

    private static int Rows(Tensor t, string name)
    {
        ArgumentNullException.ThrowIfNull(t, name);
        if (t.Rank != 2)
            throw new ArgumentException($"{name} must be [rows, D]; got {t}", name);
        return t.Rows;
    }

    private static void CheckCount(Tensor t, int count, string name)
    {
        ArgumentNullException.ThrowIfNull(t, name);
        if (t.ElementCount != count)
            throw new ArgumentException($"{name} must have {count} elements; got {t}", name);
    }
}
