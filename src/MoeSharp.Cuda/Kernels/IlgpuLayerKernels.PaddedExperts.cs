using ILGPU;
using ILGPU.Runtime;
using MoeSharp.Compute;
using MoeSharp.Cuda.Cublas;
using MoeSharp.Cuda.Memory;
using MoeSharp.Cuda.Native;
using MoeSharp.Tensors;

namespace MoeSharp.Cuda.Kernels;

/// <summary>
/// <see cref="IPaddedExpertKernels"/> on the ILGPU backend: one strided-batched bfloat16 cuBLAS product per
/// projection over the padded groups (float32 accumulation and output) on CUDA, the strided-product kernel over
/// widened operands elsewhere; padding, the weights' bfloat16 copies and SwiGLU are ILGPU kernels.
/// </summary>
public sealed partial class IlgpuLayerKernels : IPaddedExpertKernels
{
    /// <summary>
    /// Largest padded rows over routed rows that <see cref="Plan"/> accepts: padding costs product FLOPs, so with
    /// very uneven routing the experts run product by product instead. On the H200 at the qwen3 shape the padded
    /// products with their layout passes cost about 9 ms per step at no padding and the product-by-product path about
    /// 30 ms, so padding pays up to about 3× the rows; 2.5 leaves a margin (and bounds the padded buffers' memory).
    /// </summary>
    private const double MaxPaddingRatio = 2.5;

    /// <summary>Group capacities are rounded up to a multiple of this (aligned blocks for the tensor cores).</summary>
    private const int CapacityAlignment = 8;

    private Action<Index1D, ArrayView<float>, ArrayView<float>, int, ArrayView<ushort>>? _stack;
    private Action<Index1D, ArrayView<float>, ArrayView<float>, int, int, ArrayView<uint>>? _stackTiled;
    private Action<Index1D, ArrayView<float>, ArrayView<uint>>? _castTiled;
    private Action<Index1D, ArrayView<float>, ArrayView<int>, int, int, int, ArrayView<uint>>? _padTiled;
    private Action<Index1D, ArrayView<float>, ArrayView<int>, int, int, int, ArrayView<float>, int>? _unpadTiled;
    private Action<Index1D, ArrayView<float>, int, ArrayView<ushort>>? _paddedSwiGlu;
    private Action<Index1D, ArrayView<float>, ArrayView<float>, int, ArrayView<ushort>>? _paddedSwiGluBackward;
    private Action<Index1D, ArrayView<float>, int, ArrayView<ushort>>? _paddedSwiGluTiled;
    private Action<Index1D, ArrayView<float>, ArrayView<float>, int, ArrayView<ushort>>? _paddedSwiGluBackwardTiled;
    private Action<Index1D, ArrayView<ushort>, ArrayView<float>>? _widen;
    private Action<
        Index1D,
        ArrayView<float>,
        int,
        ArrayView<int>,
        int,
        ArrayView<float>,
        int,
        int,
        ArrayView<uint>
    >? _placeTiled;
    private Action<Index1D, ArrayView<int>, int, ArrayView<uint>>? _clearTokenless;
    private Action<
        Index1D,
        ArrayView<float>,
        int,
        ArrayView<int>,
        ArrayView<float>,
        int,
        int,
        ArrayView<ushort>
    >? _placeRows;

    /// <inheritdoc />
    /// <remarks>With <see cref="BFloat16Products"/> and the <see cref="BFloat16GemmPath.PaddedBatched"/> path; null
    /// otherwise (float32 products, or another path being measured).</remarks>
    public IPaddedExpertKernels? PaddedExperts =>
        BFloat16Products && GemmPath == BFloat16GemmPath.PaddedBatched ? this : null;

    /// <inheritdoc />
    public PaddedGroups? Plan(ReadOnlySpan<long> rowsPerGroup)
    {
        long total = 0,
            largest = 0;
        foreach (long rows in rowsPerGroup)
        {
            ArgumentOutOfRangeException.ThrowIfNegative(rows, nameof(rowsPerGroup));
            total += rows;
            largest = Math.Max(largest, rows);
        }
        long capacity = (largest + CapacityAlignment - 1) / CapacityAlignment * CapacityAlignment;
        long paddedRows = capacity * rowsPerGroup.Length;
        if (total == 0 || paddedRows > total * MaxPaddingRatio || paddedRows > int.MaxValue)
            return null;
        int groups = rowsPerGroup.Length;
        var table = new int[2 * groups];
        long start = 0;
        for (int g = 0; g < groups; g++)
        {
            table[g] = (int)start;
            table[groups + g] = (int)rowsPerGroup[g];
            start += rowsPerGroup[g];
        }
        Tensor onDevice = Dispatch.Device.ToDevice(Tensor.FromArray(table, table.Length));
        return new PaddedGroups(rowsPerGroup, (int)capacity, onDevice);
    }

    /// <inheritdoc />
    public void PadRows(Tensor rows, PaddedGroups layout, Tensor padded)
    {
        ArgumentNullException.ThrowIfNull(layout);
        int columns = Columns(rows, nameof(rows));
        CheckPadded(padded, DType.BFloat16, layout, columns, nameof(padded));
        if (columns % (2 * TiledRowKernelBodies.TileWords) == 0)
        {
            // Rows of whole tiles: a warp moves 128 contiguous bytes per access, one row lookup per 8 values.
            _padTiled ??= _acc.LoadAutoGroupedStreamKernel<
                Index1D,
                ArrayView<float>,
                ArrayView<int>,
                int,
                int,
                int,
                ArrayView<uint>
            >(PaddedExpertKernelBodies.PadRowsTiled);
            _padTiled(
                padded.ElementCount / 8,
                Floats(rows, nameof(rows)),
                DeviceViews.Ints(_acc, layout.Table, nameof(layout)),
                layout.Groups,
                layout.Capacity,
                columns / 2,
                DeviceViews.BFloat16Bits(_acc, padded, nameof(padded)).Cast<uint>()
            );
            return;
        }
        _padToBFloat16(
            padded.ElementCount,
            Floats(rows, nameof(rows)),
            DeviceViews.Ints(_acc, layout.Table, nameof(layout)),
            layout.Groups,
            layout.Capacity,
            columns,
            DeviceViews.BFloat16Bits(_acc, padded, nameof(padded))
        );
    }

    /// <inheritdoc />
    /// <remarks>
    /// Rows of whole 256-value tiles go token by token, each token row read once and written to its K rows (as
    /// <c>TokenScatterKernelBodies</c>), after the rows no token lands in are cleared; other widths one element per
    /// thread from the row's token.
    /// </remarks>
    public void PlaceTokenRows(Tensor tokens, int tokenRowOffset, TokenScatter map, Tensor padded)
    {
        ArgumentNullException.ThrowIfNull(map);
        int columns = Columns(tokens, nameof(tokens));
        CheckDType(padded, DType.BFloat16, nameof(padded));
        int rows = map.RowToken.ElementCount,
            tokenCount = map.EntryRow.ElementCount / Math.Max(1, map.TopK);
        if (padded.Rank != 2 || padded.Dim(0) != rows || padded.Dim(1) != columns)
        {
            throw new ArgumentException($"padded must be bfloat16 [{rows}, {columns}] but is {padded}", nameof(padded));
        }
        if (rows == 0 || columns == 0)
            return;
        bool cuda = _acc.AcceleratorType == AcceleratorType.Cuda;
        ArrayView<int> rowToken = DeviceViews.Ints(_acc, map.RowToken, nameof(map));
        ArrayView<float> scale = map.Scale is null ? rowToken.Cast<float>() : Floats(map.Scale, nameof(map));
        int hasScale = map.Scale is null ? 0 : 1;
        if (columns % (2 * TiledRowKernelBodies.TileWords) != 0)
        {
            _placeRows ??= _acc.LoadAutoGroupedStreamKernel<
                Index1D,
                ArrayView<float>,
                int,
                ArrayView<int>,
                ArrayView<float>,
                int,
                int,
                ArrayView<ushort>
            >(
                cuda
                    ? PlacedRowKernelBodies.PlaceRows<CudaStrictFloat>
                    : PlacedRowKernelBodies.PlaceRows<ManagedStrictFloat>
            );
            _placeRows(
                padded.ElementCount,
                Floats(tokens, nameof(tokens)),
                tokenRowOffset,
                rowToken,
                scale,
                hasScale,
                columns,
                DeviceViews.BFloat16Bits(_acc, padded, nameof(padded))
            );
            return;
        }
        int words = columns / 2;
        ArrayView<uint> to = DeviceViews.BFloat16Bits(_acc, padded, nameof(padded)).Cast<uint>();
        // Rows no token lands in exist only when there are more rows than (token, slot) entries.
        if (rows > tokenCount * map.TopK)
        {
            _clearTokenless ??= _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<int>, int, ArrayView<uint>>(
                TokenScatterKernelBodies.ClearTokenlessRowsTiled
            );
            _clearTokenless(rows * (words / 4), rowToken, words, to);
        }
        if (tokenCount == 0 || map.TopK == 0)
            return;
        _placeTiled ??= _acc.LoadAutoGroupedStreamKernel<
            Index1D,
            ArrayView<float>,
            int,
            ArrayView<int>,
            int,
            ArrayView<float>,
            int,
            int,
            ArrayView<uint>
        >(
            cuda
                ? PlacedRowKernelBodies.PlaceTokensTiled<CudaStrictFloat>
                : PlacedRowKernelBodies.PlaceTokensTiled<ManagedStrictFloat>
        );
        _placeTiled(
            tokenCount * (words / 4),
            Floats(tokens, nameof(tokens)),
            tokenRowOffset,
            DeviceViews.Ints(_acc, map.EntryRow, nameof(map)),
            map.TopK,
            scale,
            hasScale,
            words,
            to
        );
    }

    /// <inheritdoc />
    public void UnpadRows(Tensor padded, PaddedGroups layout, Tensor rows, bool accumulate)
    {
        ArgumentNullException.ThrowIfNull(layout);
        int columns = Columns(rows, nameof(rows));
        CheckPadded(padded, DType.Float32, layout, columns, nameof(padded));
        if (columns % TiledRowKernelBodies.TileWords == 0)
        {
            _unpadTiled ??= _acc.LoadAutoGroupedStreamKernel<
                Index1D,
                ArrayView<float>,
                ArrayView<int>,
                int,
                int,
                int,
                ArrayView<float>,
                int
            >(PaddedExpertKernelBodies.UnpadRowsTiled);
            _unpadTiled(
                padded.ElementCount / 4,
                Floats(padded, nameof(padded)),
                DeviceViews.Ints(_acc, layout.Table, nameof(layout)),
                layout.Groups,
                layout.Capacity,
                columns,
                Floats(rows, nameof(rows)),
                accumulate ? 1 : 0
            );
            return;
        }
        _unpadInto(
            padded.ElementCount,
            Floats(padded, nameof(padded)),
            DeviceViews.Ints(_acc, layout.Table, nameof(layout)),
            layout.Groups,
            layout.Capacity,
            columns,
            Floats(rows, nameof(rows)),
            accumulate ? 1 : 0
        );
    }

    /// <inheritdoc />
    public void StackWeights(Tensor w1, Tensor w3, Tensor w2, Tensor gateUp, Tensor down)
    {
        DeviceViews.SameCount(w1, w3, nameof(w3));
        DeviceViews.SameCount(w2, down, nameof(down));
        if (gateUp.ElementCount != 2L * w1.ElementCount)
            throw new ArgumentException($"gateUp must hold w1 and w3 ({2L * w1.ElementCount} values)", nameof(gateUp));
        if (w1.ElementCount == 0)
            return;
        int experts = w1.Dim(0),
            dim = w1.Dim(w1.Rank - 1),
            hidden = (int)(w1.ElementCount / experts / dim);
        if (dim % (2 * TiledRowKernelBodies.TileWords) == 0 && w2.ElementCount % 256 == 0)
        {
            // Whole tiles: coalesced 128-byte accesses and one row lookup per 8 values (one value per thread with a
            // division each ran at about a third of the copy bandwidth on an H200).
            _stackTiled ??= _acc.LoadAutoGroupedStreamKernel<
                Index1D,
                ArrayView<float>,
                ArrayView<float>,
                int,
                int,
                ArrayView<uint>
            >(PaddedExpertKernelBodies.StackRowsTiled);
            _castTiled ??= _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<uint>>(
                PaddedExpertKernelBodies.ToBFloat16Tiled
            );
            _stackTiled(
                gateUp.ElementCount / 8,
                Floats(w1, nameof(w1)),
                Floats(w3, nameof(w3)),
                hidden,
                dim / 2,
                DeviceViews.BFloat16Bits(_acc, gateUp, nameof(gateUp)).Cast<uint>()
            );
            _castTiled(
                down.ElementCount / 8,
                Floats(w2, nameof(w2)),
                DeviceViews.BFloat16Bits(_acc, down, nameof(down)).Cast<uint>()
            );
            return;
        }
        _stack ??= _acc.LoadAutoGroupedStreamKernel<
            Index1D,
            ArrayView<float>,
            ArrayView<float>,
            int,
            ArrayView<ushort>
        >(PaddedExpertKernelBodies.StackToBFloat16);
        _stack(
            gateUp.ElementCount,
            Floats(w1, nameof(w1)),
            Floats(w3, nameof(w3)),
            (int)(w1.ElementCount / w1.Dim(0)),
            DeviceViews.BFloat16Bits(_acc, gateUp, nameof(gateUp))
        );
        _toBFloat16(w2.ElementCount, Floats(w2, nameof(w2)), 0, DeviceViews.BFloat16Bits(_acc, down, nameof(down)));
    }

    /// <inheritdoc />
    public void BatchedMatMulTransposeB(
        Tensor a,
        Tensor b,
        Tensor c,
        PaddedGroups layout,
        GemmShape shape,
        bool accumulate = false
    )
    {
        ArgumentNullException.ThrowIfNull(layout);
        (_, int n, int k) = shape;
        int cap = layout.Capacity;
        Batched(
            a,
            b,
            c,
            layout,
            accumulate,
            (pa, pb, pc, g) =>
                CublasRowMajorGemm.TransposeBProblem(
                    pa + ((nint)g * cap * k * 2),
                    pb + ((nint)g * n * k * 2),
                    pc + ((nint)g * cap * n * 4),
                    cap,
                    n,
                    k
                ),
            (aw, bw, g) =>
                _product(
                    cap * n,
                    aw,
                    g * cap * k,
                    k,
                    1,
                    bw,
                    g * n * k,
                    k,
                    1,
                    Floats(c, "c"),
                    g * cap * n,
                    n,
                    k,
                    accumulate ? 1 : 0
                )
        );
    }

    /// <inheritdoc />
    public void BatchedMatMul(
        Tensor a,
        Tensor b,
        Tensor c,
        PaddedGroups layout,
        GemmShape shape,
        bool accumulate = false
    )
    {
        ArgumentNullException.ThrowIfNull(layout);
        (_, int n, int k) = shape;
        int cap = layout.Capacity;
        Batched(
            a,
            b,
            c,
            layout,
            accumulate,
            (pa, pb, pc, g) =>
                CublasRowMajorGemm.TimesProblem(
                    pa + ((nint)g * cap * k * 2),
                    pb + ((nint)g * k * n * 2),
                    pc + ((nint)g * cap * n * 4),
                    cap,
                    n,
                    k
                ),
            (aw, bw, g) =>
                _product(
                    cap * n,
                    aw,
                    g * cap * k,
                    k,
                    1,
                    bw,
                    g * k * n,
                    1,
                    n,
                    Floats(c, "c"),
                    g * cap * n,
                    n,
                    k,
                    accumulate ? 1 : 0
                )
        );
    }

    /// <inheritdoc />
    public void BatchedMatMulTransposeA(
        Tensor a,
        int aColumn,
        int aRowStride,
        Tensor b,
        Tensor c,
        PaddedGroups layout,
        GemmShape shape,
        bool accumulate = false
    )
    {
        ArgumentNullException.ThrowIfNull(layout);
        (int m, int n, _) = shape;
        int cap = layout.Capacity;
        if (aColumn < 0 || aColumn + m > aRowStride)
            throw new ArgumentOutOfRangeException(
                nameof(aColumn),
                aColumn,
                $"columns [{aColumn}, +{m}) of rows of {aRowStride}"
            );
        Batched(
            a,
            b,
            c,
            layout,
            accumulate,
            (pa, pb, pc, g) =>
            {
                GemmProblem p = CublasRowMajorGemm.TransposeAProblem(
                    pa + ((((nint)g * cap * aRowStride) + aColumn) * 2),
                    pb + ((nint)g * cap * n * 2),
                    pc + ((nint)g * m * n * 4),
                    m,
                    n,
                    cap
                );
                // The caller's A is cuBLAS's second operand: a column block of rows of aRowStride values.
                return p with { Gemm = p.Gemm with { Ldb = aRowStride } };
            },
            (aw, bw, g) =>
                _product(
                    m * n,
                    aw,
                    (g * cap * aRowStride) + aColumn,
                    1,
                    aRowStride,
                    bw,
                    g * cap * n,
                    1,
                    n,
                    Floats(c, "c"),
                    g * m * n,
                    n,
                    cap,
                    accumulate ? 1 : 0
                )
        );
    }

    /// <inheritdoc />
    public void SwiGluForward(Tensor gateUp, Tensor activation)
    {
        (int rows, int hidden) = RowsAndHidden(activation, gateUp, nameof(gateUp));
        if (rows == 0)
            return;
        if (hidden % TiledRowKernelBodies.TileWords == 0)
        {
            _paddedSwiGluTiled ??= _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, int, ArrayView<ushort>>(
                PaddedExpertKernelBodies.SwiGluForwardTiled
            );
            _paddedSwiGluTiled(
                activation.ElementCount / 4,
                Floats(gateUp, nameof(gateUp)),
                hidden,
                DeviceViews.BFloat16Bits(_acc, activation, nameof(activation))
            );
            return;
        }
        _paddedSwiGlu ??= _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, int, ArrayView<ushort>>(
            PaddedExpertKernelBodies.SwiGluForward
        );
        _paddedSwiGlu(
            activation.ElementCount,
            Floats(gateUp, nameof(gateUp)),
            hidden,
            DeviceViews.BFloat16Bits(_acc, activation, nameof(activation))
        );
    }

    /// <inheritdoc />
    public void SwiGluBackward(Tensor gradActivation, Tensor gateUp, Tensor gradGateUp)
    {
        (int rows, int hidden) = RowsAndHidden(gradActivation, gateUp, nameof(gateUp));
        DeviceViews.SameCount(gateUp, gradGateUp, nameof(gradGateUp));
        if (rows == 0)
            return;
        bool tiled = hidden % TiledRowKernelBodies.TileWords == 0;
        if (tiled)
        {
            _paddedSwiGluBackwardTiled ??= _acc.LoadAutoGroupedStreamKernel<
                Index1D,
                ArrayView<float>,
                ArrayView<float>,
                int,
                ArrayView<ushort>
            >(PaddedExpertKernelBodies.SwiGluBackwardTiled);
        }
        _paddedSwiGluBackward ??= _acc.LoadAutoGroupedStreamKernel<
            Index1D,
            ArrayView<float>,
            ArrayView<float>,
            int,
            ArrayView<ushort>
        >(PaddedExpertKernelBodies.SwiGluBackward);
        (tiled ? _paddedSwiGluBackwardTiled! : _paddedSwiGluBackward)(
            tiled ? gradActivation.ElementCount / 4 : gradActivation.ElementCount,
            Floats(gradActivation, nameof(gradActivation)),
            Floats(gateUp, nameof(gateUp)),
            hidden,
            DeviceViews.BFloat16Bits(_acc, gradGateUp, nameof(gradGateUp))
        );
    }

    /// <summary>
    /// One strided-batched cuBLAS call over the groups (its strides read off the problems of groups 0 and 1), or,
    /// without cuBLAS, the operands widened to float32 and the strided kernel once per group.
    /// </summary>
    private void Batched(
        Tensor a,
        Tensor b,
        Tensor c,
        PaddedGroups layout,
        bool accumulate,
        Func<nint, nint, nint, int, GemmProblem> problem,
        Action<ArrayView<float>, ArrayView<float>, int> onKernel
    )
    {
        CheckDType(a, DType.BFloat16, nameof(a));
        CheckDType(b, DType.BFloat16, nameof(b));
        CheckDType(c, DType.Float32, nameof(c));
        if (_cublas is not null)
        {
            nint pa = DevicePointers.Of(a, nameof(a)).Pointer,
                pb = DevicePointers.Of(b, nameof(b)).Pointer,
                pc = DevicePointers.Of(c, nameof(c)).Pointer;
            GemmProblem first = problem(pa, pb, pc, 0);
            GemmProblem second = layout.Groups > 1 ? problem(pa, pb, pc, 1) : first;
            _cublas.StridedBatchedBFloat16(
                first,
                second.First - first.First,
                second.Second - first.Second,
                second.C - first.C,
                layout.Groups,
                accumulate
            );
            return;
        }
        _widen ??= _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<ushort>, ArrayView<float>>(
            PaddedExpertKernelBodies.Widen
        );
        using var scope = new TensorScope(Allocator);
        Tensor wa = scope.Rent(DType.Float32, a.ElementCount),
            wb = scope.Rent(DType.Float32, b.ElementCount);
        _widen(a.ElementCount, DeviceViews.BFloat16Bits(_acc, a, nameof(a)), Floats(wa, nameof(a)));
        _widen(b.ElementCount, DeviceViews.BFloat16Bits(_acc, b, nameof(b)), Floats(wb, nameof(b)));
        for (int g = 0; g < layout.Groups; g++)
            onKernel(Floats(wa, nameof(a)), Floats(wb, nameof(b)), g);
    }

    private static void CheckDType(Tensor t, DType dtype, string name)
    {
        ArgumentNullException.ThrowIfNull(t, name);
        if (t.DType != dtype)
            throw new ArgumentException($"{name} must be {dtype} but is {t}", name);
    }

    private static int Columns(Tensor rows, string name)
    {
        CheckDType(rows, DType.Float32, name);
        if (rows.Rank != 2)
            throw new ArgumentException($"{name} must be [rows, columns] but is {rows}", name);
        return rows.Dim(1);
    }

    private static void CheckPadded(Tensor padded, DType dtype, PaddedGroups layout, int columns, string name)
    {
        CheckDType(padded, dtype, name);
        if (padded.ElementCount != (long)layout.PaddedRows * columns)
        {
            throw new ArgumentException(
                $"{name} must hold {layout.PaddedRows} padded rows of {columns} but is {padded}",
                name
            );
        }
    }

    private static (int Rows, int Hidden) RowsAndHidden(Tensor halfWidth, Tensor gateUp, string name)
    {
        if (halfWidth.Rank != 2)
            throw new ArgumentException($"expected [rows, H] but got {halfWidth}", nameof(halfWidth));
        CheckDType(gateUp, DType.Float32, name);
        if (gateUp.ElementCount != 2L * halfWidth.ElementCount)
            throw new ArgumentException($"{name} must be [rows, 2H] float32 but is {gateUp}", name);
        return (halfWidth.Dim(0), halfWidth.Dim(1));
    }
}
