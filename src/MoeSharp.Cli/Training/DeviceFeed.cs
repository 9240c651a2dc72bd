using MoeSharp.Cuda;
using MoeSharp.Cuda.Kernels;
using MoeSharp.Tensors;

namespace MoeSharp.Cli.Training;

/// <summary>
/// Feeds a device rank's layer in <c>moe train</c>: the step's rows of the batch drawn on the device (or uploaded), the
/// teacher's targets, and after the forward the head's prediction, error and gradients, so a step copies only vectors
/// (the own rows' errors, the head and its gradient) between host and device, never [T, D] rows.
/// </summary>
/// <remarks>
/// The tensors of a step are rented from the backend's allocator and handed back by <see cref="EndStep"/>, after the
/// step's last kernel was queued (the allocator reuses buffers in stream order).
/// </remarks>
internal sealed class DeviceFeed : IDisposable
{
    private readonly IlgpuBackend _backend;
    private readonly IlgpuTrainerKernels _kernels;
    private readonly Tensor _teacherA;
    private readonly Tensor _teacherB;
    private readonly List<Tensor> _rented = [];
    private Tensor _head;
    private Tensor? _results;
    private int _ownCount;

    /// <summary>Uploads the teacher and the head's weight to <paramref name="backend"/>.</summary>
    public DeviceFeed(IlgpuBackend backend, float[] teacherA, float[] teacherB, Tensor head)
    {
        _backend = backend ?? throw new ArgumentNullException(nameof(backend));
        _kernels = new IlgpuTrainerKernels(backend.Allocator);
        _teacherA = backend.Allocator.Upload(Tensor.FromArray(teacherA, teacherA.Length));
        _teacherB = backend.Allocator.Upload(Tensor.FromArray(teacherB, teacherB.Length));
        _head = backend.Allocator.Upload(head);
    }

    /// <summary>
    /// Rows <c>[firstRow, firstRow + rows)</c> of step <paramref name="step"/>'s counter batch
    /// (<see cref="BatchSource.Counter"/>), drawn on the device.
    /// </summary>
    public Tensor CounterBatch(int seed, int step, int firstRow, int rows, int d)
    {
        Tensor x = Rent(DType.Float32, rows, d);
        _kernels.CounterBatch(CounterUniform.StreamKey(seed, step), (long)firstRow * d, x);
        return x;
    }

    /// <summary>A device copy of host rows (a <see cref="BatchSource.Sequential"/> batch).</summary>
    public Tensor Upload(Tensor rows)
    {
        Tensor x = _backend.Allocator.Upload(rows);
        _rented.Add(x);
        return x;
    }

    /// <summary>The teacher's target of every row of <paramref name="x"/>: R floats on the device.</summary>
    public Tensor Teacher(Tensor x)
    {
        Tensor target = Rent(DType.Float32, x.Rows);
        _kernels.Teacher(x, _teacherA, _teacherB, target);
        return target;
    }

    /// <summary>
    /// Queues the head's step on the layer's output <paramref name="y"/>: returns dL/dy for the layer's backward;
    /// the own rows' errors and the head's gradient wait on the device for <see cref="EndStep"/>.
    /// </summary>
    /// <param name="y">The layer's output, [R, D] on this device.</param>
    /// <param name="target">From <see cref="Teacher"/>.</param>
    /// <param name="scale">dL/dpred per unit error.</param>
    /// <param name="ownOffset">The first row of <paramref name="y"/> this rank owns.</param>
    /// <param name="ownCount">How many it owns.</param>
    public Tensor Loss(Tensor y, Tensor target, float scale, int ownOffset, int ownCount)
    {
        Tensor gradPred = Rent(DType.Float32, y.Rows);
        Tensor gradY = Rent(DType.Float32, y.Rows, y.RowLength);
        _results = Rent(DType.Float32, ownCount + y.RowLength);
        _ownCount = ownCount;
        _kernels.Loss(y, _head, target, scale, ownOffset, ownCount, gradPred, gradY, _results);
        return gradY;
    }

    /// <summary>
    /// Waits for the step, returns the own rows' errors and the head's gradient, and hands the step's tensors back.
    /// </summary>
    public (float[] Errors, float[] HeadGrad) EndStep()
    {
        Tensor results = _results ?? throw new InvalidOperationException("EndStep before Loss");
        float[] all = results.ToHost().AsSpan<float>().ToArray();
        foreach (Tensor t in _rented)
            _backend.Allocator.Return(t);
        _rented.Clear();
        _results = null;
        return (all[.._ownCount], all[_ownCount..]);
    }

    /// <summary>Copies the head's updated weight to the device for the next step (a small, queued copy).</summary>
    public void SetHead(Tensor head)
    {
        Tensor next = _backend.Allocator.Upload(head);
        _backend.Allocator.Return(_head);
        _head = next;
    }

    /// <summary>Hands every device tensor back and frees the kernels' scratch.</summary>
    public void Dispose()
    {
        foreach (Tensor t in _rented)
            _backend.Allocator.Return(t);
        _rented.Clear();
        _backend.Allocator.Return(_teacherA);
        _backend.Allocator.Return(_teacherB);
        _backend.Allocator.Return(_head);
        _kernels.Dispose();
    }

    private Tensor Rent(DType dtype, params int[] shape)
    {
        Tensor t = _backend.Allocator.Rent(dtype, shape);
        _rented.Add(t);
        return t;
    }
}
