using System.Runtime.InteropServices;
using MoeSharp.Compute;
using MoeSharp.Tensors;

namespace MoeSharp.Training;

/// <summary>
/// AdamW (Loshchilov &amp; Hutter; PyTorch's <c>torch.optim.AdamW</c>, non-amsgrad): decoupled weight decay
/// <c>θ ← θ − lr·λ·θ</c>, then the bias-corrected Adam step
/// <c>θ ← θ − lr · m̂ / (√v̂ + ε)</c>. Element-wise and single-threaded per element, so deterministic.
/// </summary>
/// <remarks>
/// The two moments, as large as the parameters together, are rented from the kernels' allocator (on a device, device
/// memory): <see cref="Dispose"/> hands them back, so a run that builds a second optimizer does not hold both.
/// </remarks>
public sealed class AdamW : IDisposable
{
    private readonly Parameter[] _parameters;
    private readonly ILayerKernels _kernels;
    private readonly Tensor[] _expAvg;
    private readonly Tensor[] _expAvgSq;
    private bool _disposed;

    /// <summary>Creates the optimizer with zero moments.</summary>
    /// <param name="parameters">Parameters to update (distinct names).</param>
    /// <param name="learningRate">lr &gt; 0.</param>
    /// <param name="beta1">β1 in [0, 1).</param>
    /// <param name="beta2">β2 in [0, 1).</param>
    /// <param name="epsilon">ε &gt; 0.</param>
    /// <param name="weightDecay">λ ≥ 0 (decoupled).</param>
    /// <param name="kernels">
    /// The backend the parameters live on (the moments are kept there too and the step runs there); the host
    /// when null.
    /// </param>
    /// <exception cref="ArgumentException">A hyper-parameter is out of range, a name repeats or a parameter is not on
    /// the kernels' device.</exception>
    public AdamW(
        IEnumerable<Parameter> parameters,
        float learningRate = 1e-3f,
        float beta1 = 0.9f,
        float beta2 = 0.999f,
        float epsilon = 1e-8f,
        float weightDecay = 0.01f,
        ILayerKernels? kernels = null
    )
    {
        ArgumentNullException.ThrowIfNull(parameters);
        if (!(learningRate >= 0) || !float.IsFinite(learningRate))
        {
            throw new ArgumentOutOfRangeException(
                nameof(learningRate),
                learningRate,
                "learning rate must be finite and ≥ 0"
            );
        }
        if (!(beta1 >= 0 && beta1 < 1))
            throw new ArgumentOutOfRangeException(nameof(beta1), beta1, "beta1 must be in [0, 1)");
        if (!(beta2 >= 0 && beta2 < 1))
            throw new ArgumentOutOfRangeException(nameof(beta2), beta2, "beta2 must be in [0, 1)");
        if (!(epsilon > 0))
            throw new ArgumentOutOfRangeException(nameof(epsilon), epsilon, "epsilon must be > 0");
        if (!(weightDecay >= 0))
            throw new ArgumentOutOfRangeException(nameof(weightDecay), weightDecay, "weight decay must be ≥ 0");

        _parameters = parameters.ToArray();
        var names = new HashSet<string>();
        foreach (Parameter p in _parameters)
        {
            ArgumentNullException.ThrowIfNull(p, nameof(parameters));
            if (!names.Add(p.Name))
            {
                throw new ArgumentException($"parameter name '{p.Name}' appears twice", nameof(parameters));
            }
        }
        _kernels = kernels ?? new HostLayerKernels();
        foreach (Parameter p in _parameters)
        {
            if (p.Value.Device != _kernels.Dispatch.Device.Name)
            {
                throw new ArgumentException(
                    $"parameter '{p.Name}' is on {p.Value.Device} but the optimizer runs on "
                        + $"{_kernels.Dispatch.Device.Name}",
                    nameof(parameters)
                );
            }
        }
        _expAvg = _parameters.Select(p => _kernels.RentZeros(DType.Float32, p.Value.ElementCount)).ToArray();
        _expAvgSq = _parameters.Select(p => _kernels.RentZeros(DType.Float32, p.Value.ElementCount)).ToArray();
        LearningRate = learningRate;
        Beta1 = beta1;
        Beta2 = beta2;
        Epsilon = epsilon;
        WeightDecay = weightDecay;
    }

    /// <summary>Learning rate (may be changed between steps by a schedule).</summary>
    public float LearningRate { get; set; }

    /// <summary>β1, the decay rate of the first moment (the running mean of the gradients).</summary>
    public float Beta1 { get; }

    /// <summary>β2, the decay rate of the second moment (the running mean of the squared gradients).</summary>
    public float Beta2 { get; }

    /// <summary>ε, added to the root of the second moment so the step never divides by zero.</summary>
    public float Epsilon { get; }

    /// <summary>Decoupled weight decay λ.</summary>
    public float WeightDecay { get; }

    /// <summary>Steps taken so far.</summary>
    public int StepCount { get; private set; }

    /// <summary>The parameters, in the order given.</summary>
    public IReadOnlyList<Parameter> Parameters => _parameters;

    /// <summary>Applies one update to every parameter from its <see cref="Parameter.Grad"/>.</summary>
    public void Step()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        StepCount++;
        // Bias corrections in double: β^t underflows gracefully and the float result matches PyTorch closely.
        float bias1 = (float)(1 - Math.Pow(Beta1, StepCount));
        float bias2Sqrt = (float)Math.Sqrt(1 - Math.Pow(Beta2, StepCount));
        float stepSize = LearningRate / bias1;
        float decay = 1f - (LearningRate * WeightDecay);
        var scalars = new AdamWScalars(Beta1, Beta2, stepSize, bias2Sqrt, Epsilon, decay);
        IOptimizerKernels optimizer = _kernels.Optimizer;
        // Every parameter in one call (one multi-tensor launch on a device). A parameter with a bfloat16 copy (the
        // padded experts' weights) gets it written in the same pass; if the kernels cannot, the copy's owner learns
        // that it is stale and casts again before reading it.
        bool copies = optimizer.WritesBFloat16Copies;
        var tensors = new AdamWTensors[_parameters.Length];
        for (int i = 0; i < _parameters.Length; i++)
        {
            Parameter p = _parameters[i];
            tensors[i] = new AdamWTensors(p.Value, p.Grad, _expAvg[i], _expAvgSq[i], copies ? p.Shadow?.Layout : null);
        }
        optimizer.AdamWSteps(tensors, scalars);
        foreach (Parameter p in _parameters)
        {
            if (copies)
                p.Shadow?.Written();
            else
                p.Shadow?.Skipped();
        }
    }

    /// <summary>Name prefix of the first moments in <see cref="MomentsStateDict"/>.</summary>
    public const string ExpAvgPrefix = "exp_avg.";

    /// <summary>Name prefix of the second moments in <see cref="MomentsStateDict"/>.</summary>
    public const string ExpAvgSqPrefix = "exp_avg_sq.";

    /// <summary>
    /// Host copies of the moments, shaped like their parameters and named <c>exp_avg.{name}</c> and
    /// <c>exp_avg_sq.{name}</c>, in parameter order. With <see cref="StepCount"/> they are the whole state a
    /// resumed run needs to take the same steps (<see cref="LoadState"/>).
    /// </summary>
    public IReadOnlyList<KeyValuePair<string, Tensor>> MomentsStateDict()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var state = new List<KeyValuePair<string, Tensor>>(2 * _parameters.Length);
        for (int i = 0; i < _parameters.Length; i++)
        {
            int[] shape = _parameters[i].Value.ShapeArray();
            state.Add(new(ExpAvgPrefix + _parameters[i].Name, HostCopy(_expAvg[i], shape)));
            state.Add(new(ExpAvgSqPrefix + _parameters[i].Name, HostCopy(_expAvgSq[i], shape)));
        }
        return state;
    }

    /// <summary>
    /// Restores the moments (named as in <see cref="MomentsStateDict"/>, float32, each with its parameter's
    /// element count) and the step count. Nothing changes unless every moment checks out.
    /// </summary>
    /// <param name="moments">Name/tensor pairs with both moments of every parameter (host tensors).</param>
    /// <param name="stepCount">Steps taken when the moments were saved, ≥ 0.</param>
    /// <param name="sourceName">Names the source in errors, e.g. a file.</param>
    /// <exception cref="InvalidDataException">A moment is missing, not float32 or of another size.</exception>
    public void LoadState(
        IEnumerable<KeyValuePair<string, Tensor>> moments,
        int stepCount,
        string sourceName = "<memory>"
    )
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        ArgumentNullException.ThrowIfNull(moments);
        ArgumentOutOfRangeException.ThrowIfNegative(stepCount);
        var byName = moments.ToDictionary(kv => kv.Key, kv => kv.Value, StringComparer.Ordinal);
        var plan = new List<(Tensor Source, Tensor Target)>();
        for (int i = 0; i < _parameters.Length; i++)
        {
            plan.Add((Require(ExpAvgPrefix + _parameters[i].Name, _expAvg[i]), _expAvg[i]));
            plan.Add((Require(ExpAvgSqPrefix + _parameters[i].Name, _expAvgSq[i]), _expAvgSq[i]));
        }
        foreach (var (source, target) in plan)
        {
            ReadOnlySpan<float> values = source.AsSpan<float>();
            if (target.DeviceBuffer is { } device)
                device.CopyFromHost(MemoryMarshal.AsBytes(values), 0);
            else
                values.CopyTo(target.AsSpan<float>());
        }
        StepCount = stepCount;

        Tensor Require(string name, Tensor target)
        {
            if (!byName.TryGetValue(name, out Tensor? t))
            {
                throw new InvalidDataException($"{sourceName}: missing optimizer moment '{name}'");
            }
            if (t.DType != DType.Float32 || t.ElementCount != target.ElementCount || !t.IsOnHost)
            {
                throw new InvalidDataException(
                    $"{sourceName}: optimizer moment '{name}' is {t} but the optimizer expects "
                        + $"{target.ElementCount} float32 values on the host"
                );
            }
            return t;
        }
    }

    private static Tensor HostCopy(Tensor moment, int[] shape)
    {
        Tensor host = moment.IsOnHost ? moment : moment.ToHost();
        return Tensor.FromArray(host.AsSpan<float>().ToArray(), shape);
    }

    /// <summary>
    /// Hands both moments back to the kernels' allocator; the optimizer cannot step, save or load afterwards. The
    /// parameters stay with their owner. Queued device work that reads the moments runs before any later renter's (the
    /// allocator's stream ordering), so no synchronization is needed first.
    /// </summary>
    public void Dispose()
    {
        if (_disposed)
            return;
        _disposed = true;
        foreach (Tensor moment in _expAvg.Concat(_expAvgSq))
            _kernels.Allocator.Return(moment);
    }

    /// <summary>Sets every parameter's gradient to zero.</summary>
    public void ZeroGrad()
    {
        foreach (Parameter p in _parameters)
            _kernels.Dispatch.Rows.Clear(p.Grad);
    }
}
