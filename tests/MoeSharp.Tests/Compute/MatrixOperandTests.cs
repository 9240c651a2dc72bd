using CsCheck;
using MoeSharp.Compute;
using MoeSharp.Tensors;

namespace MoeSharp.Tests.Compute;

/// <summary>
/// <see cref="MatrixOperand"/> addresses a row block or a matrix of a stack, and the host products at an offset are
/// those of <see cref="HostGemm"/> on the addressed elements.
/// </summary>
public sealed class MatrixOperandTests
{
    [Fact]
    public void HostSpan_IsTheRowBlockOrTheStackedMatrix()
    {
        var t = Tensor.FromArray(Enumerable.Range(0, 24).Select(i => (float)i).ToArray(), 2, 3, 4);
        MatrixOperand whole = t;
        Assert.Equal(0, whole.Offset);
        Assert.Equal([12f, 13f, 14f, 15f], new MatrixOperand(t, 3).HostSpan(4, 4).ToArray());
        Assert.Equal(
            Enumerable.Range(12, 12).Select(i => (float)i),
            new MatrixOperand(t, 1).HostSpan(12, 12).ToArray()
        );
        Assert.Equal(12L * 1_000_000, new MatrixOperand(t, 1_000_000).FirstElement(12));
        Assert.Throws<ArgumentOutOfRangeException>(() => new MatrixOperand(t, 2).HostSpan(12, 12).Length);
        Assert.Throws<ArgumentOutOfRangeException>(() => new MatrixOperand(t, -1).FirstElement(4));
    }

    [Fact]
    public void HostProducts_AtOffsets_AreHostGemmOnTheAddressedElements()
    {
        Gen.Select(
                Gen.Int[0, 5],
                Gen.Int[1, 5],
                Gen.Int[1, 5],
                Gen.Int[0, 3],
                Gen.Int[0, 2],
                Gen.Int[0, int.MaxValue - 1]
            )
            .Sample(
                (m, n, k, offset, index, seed) =>
                {
                    var r = new Random(seed);
                    float[] Random(int count) =>
                        Enumerable.Range(0, count).Select(_ => (float)(r.NextDouble() - 0.5)).ToArray();
                    int rows = m + offset;
                    float[] a = Random(rows * k),
                        w = Random((index + 1) * n * k),
                        c = Random((rows + 1) * n);

                    var got = Tensor.FromArray((float[])c.Clone(), rows + 1, n);
                    HostGemmKernels.Instance.MatMulTransposeB(
                        new(Tensor.FromArray(a, rows, k), offset),
                        new(Tensor.FromArray(w, index + 1, n, k), index),
                        new(got, offset + 1),
                        new(m, n, k),
                        accumulate: true
                    );
                    float[] expected = (float[])c.Clone();
                    HostGemm.MatMulTransposeB(
                        a.AsSpan(offset * k, m * k),
                        w.AsSpan(index * n * k, n * k),
                        expected.AsSpan((offset + 1) * n, m * n),
                        m,
                        n,
                        k,
                        accumulate: true
                    );
                    Assert.Equal(expected, got.AsSpan<float>().ToArray());

                    // dyᵀ·x into matrix `index` of a stack, reducing over m rows from row `offset`.
                    float[] dy = Random(rows * n),
                        grads = Random((index + 1) * n * k);
                    var gotGrad = Tensor.FromArray((float[])grads.Clone(), index + 1, n, k);
                    HostGemmKernels.Instance.MatMulTransposeA(
                        new(Tensor.FromArray(dy, rows, n), offset),
                        new(Tensor.FromArray(a, rows, k), offset),
                        new(gotGrad, index),
                        new(n, k, m)
                    );
                    float[] expectedGrad = (float[])grads.Clone();
                    HostGemm.MatMulTransposeA(
                        dy.AsSpan(offset * n, m * n),
                        a.AsSpan(offset * k, m * k),
                        expectedGrad.AsSpan(index * n * k, n * k),
                        n,
                        k,
                        m,
                        accumulate: false
                    );
                    Assert.Equal(expectedGrad, gotGrad.AsSpan<float>().ToArray());
                },
                iter: 100
            );
    }
}
