"""Plausible Chinese names for synthetic people and places, deterministic for an RNG.

Surname weights follow the rough shape of the national distribution (王, 李, 张, 刘, 陈 each
around 5–7% of the population, then a long tail); the exact figures do not matter for
testing, the shape does (many people share a surname, which stresses matching and search).
"""

from __future__ import annotations

import random
from itertools import accumulate

_SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁"
    "任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴"
    "莫孔向汤"
)
# Top five weigh ~6 each, the next fifteen ~2, the rest ~0.6: a long-tailed distribution.
_SURNAME_WEIGHTS = [6.0] * 5 + [2.0] * 15 + [0.6] * (len(_SURNAMES) - 20)
_SURNAME_CUM = list(accumulate(_SURNAME_WEIGHTS))
_COMPOUND_SURNAMES = ("欧阳", "司马", "诸葛", "上官", "东方")

_GIVEN_MALE = "伟强磊军勇杰涛斌超明刚平辉鹏华飞鑫波宇浩凯健俊帆帅旭宁龙林建国志文博海东成永新晨轩睿泽"
_GIVEN_FEMALE = "芳娜敏静丽艳娟霞燕玲婷慧琳颖雪莉倩洁红梅兰英晶月萍瑶欣怡佳琪妍雨萱婉思嘉彤悦璐诗"
_GIVEN_NEUTRAL = "子晓一嘉思雨欣可文安佳明阳春秋立德光"

_PLACE_CHARS = (
    "安平宁永兴东西南北新长清丰泰和顺德云龙凤阳桥湖江源华明庆昌林石溪岭坪堡台河山水田塘沙金银"
    "玉花桃柳松竹梅兰荷青红白黄龙虎马鹤鸣乐福寿康泉城池川坝口湾洲坡岗峰岩营庄集店铺寨"
)


def person_name(rng: random.Random, sex: str) -> str:
    if rng.random() < 0.004:
        surname = rng.choice(_COMPOUND_SURNAMES)
    else:
        surname = _SURNAMES[_bisect(_SURNAME_CUM, rng.random() * _SURNAME_CUM[-1])]
    pool = _GIVEN_MALE if sex == "M" else _GIVEN_FEMALE
    if rng.random() < 0.35:
        return surname + rng.choice(pool)
    first = rng.choice(_GIVEN_NEUTRAL) if rng.random() < 0.3 else rng.choice(pool)
    return surname + first + rng.choice(pool)


def place_name(rng: random.Random, taken: set[str]) -> str:
    """A two-character place name not yet in ``taken`` (names are unique among siblings)."""
    for _ in range(200):
        name = rng.choice(_PLACE_CHARS) + rng.choice(_PLACE_CHARS)
        if name[0] != name[1] and name not in taken:
            taken.add(name)
            return name
    raise RuntimeError("ran out of distinct place names")  # unreachable at our sizes


def _bisect(cum: list[float], x: float) -> int:
    lo, hi = 0, len(cum) - 1
    while lo < hi:
        mid = (lo + hi) // 2
        if cum[mid] < x:
            lo = mid + 1
        else:
            hi = mid
    return lo
